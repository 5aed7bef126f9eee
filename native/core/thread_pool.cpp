#include "thread_pool.h"

#include <cstdlib>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define FASTGRU_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define FASTGRU_PAUSE() __asm__ volatile("yield")
#else
#define FASTGRU_PAUSE() ((void)0)
#endif

#if defined(__linux__)
#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace fastgru {

namespace {
// Spin this many pause rounds (tens of microseconds) before sleeping or yielding.
constexpr int kSpinRounds = 1 << 11;

template <class Ready>
void spin_until(Ready ready) {
  for (int i = 0; !ready(); i++) {
    if (i < kSpinRounds) FASTGRU_PAUSE();
    else std::this_thread::yield();
  }
}

#if defined(__linux__)
void futex_wait(std::atomic<uint32_t>* word, uint32_t value) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT_PRIVATE, value, nullptr, nullptr, 0);
}
void futex_wake_all(std::atomic<uint32_t>* word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE_PRIVATE, INT32_MAX, nullptr, nullptr, 0);
}
#endif
}  // namespace

void SpinBarrier::reset(int parties) {
  parties_ = parties;
  arrived_.store(0, std::memory_order_relaxed);
}

void SpinBarrier::wait() {
  const uint32_t gen = generation_.load(std::memory_order_acquire);
  if (arrived_.fetch_add(1, std::memory_order_acq_rel) == parties_ - 1) {
    arrived_.store(0, std::memory_order_relaxed);
    generation_.store(gen + 1, std::memory_order_seq_cst);
#if defined(__linux__)
    if (sleepers_.load(std::memory_order_seq_cst) > 0) futex_wake_all(&generation_);
#endif
    return;
  }
  for (int i = 0; i < kSpinRounds; i++) {
    if (generation_.load(std::memory_order_acquire) != gen) return;
    FASTGRU_PAUSE();
  }
#if defined(__linux__)
  sleepers_.fetch_add(1, std::memory_order_seq_cst);
  while (generation_.load(std::memory_order_seq_cst) == gen) futex_wait(&generation_, gen);
  sleepers_.fetch_sub(1, std::memory_order_seq_cst);
#else
  spin_until([&] { return generation_.load(std::memory_order_acquire) != gen; });
#endif
}

void Team::split(int64_t total, int64_t grain, int64_t* begin, int64_t* end) const {
  const int64_t units = (total + grain - 1) / grain;
  const int64_t lo = units * id_ / size_;
  const int64_t hi = units * (id_ + 1) / size_;
  *begin = lo * grain < total ? lo * grain : total;
  *end = hi * grain < total ? hi * grain : total;
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::ensure_workers(int count) {
  while (int(workers_.size()) < count) {
    const int index = int(workers_.size()) + 1;
    workers_.emplace_back([this, index] { worker_main(index); });
  }
}

void ThreadPool::run(int threads, Job job, void* context) {
  bool idle = false;
  if (threads <= 1 || !busy_.compare_exchange_strong(idle, true, std::memory_order_acquire)) {
    SpinBarrier alone;
    job(Team(0, 1, &alone), context);
    return;
  }
  struct Release {
    std::atomic<bool>& flag;
    ~Release() { flag.store(false, std::memory_order_release); }
  } release{busy_};
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ensure_workers(threads - 1);
    job_ = job;
    context_ = context;
    job_threads_ = threads;
    barrier_.reset(threads);
    remaining_.store(threads - 1, std::memory_order_relaxed);
    job_id_++;
  }
  wake_.notify_all();
  job(Team(0, threads, &barrier_), context);
  spin_until([&] { return remaining_.load(std::memory_order_acquire) == 0; });
}

void ThreadPool::worker_main(int index) {
  uint64_t seen = 0;
  for (;;) {
    Job job;
    void* context;
    int threads;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || job_id_ != seen; });
      if (stop_) return;
      seen = job_id_;
      job = job_;
      context = context_;
      threads = job_threads_;
    }
    if (index < threads) {
      job(Team(index, threads, &barrier_), context);
      remaining_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }
}

ThreadPool& default_pool() {
  // Never destroyed: worker threads must not be joined during static destruction at exit.
  static ThreadPool* pool = new ThreadPool();
  return *pool;
}

int default_threads() {
  if (const char* env = std::getenv("FASTGRU_THREADS")) {
    char* end = nullptr;
    const long n = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && n > 0 && n <= 1024) return int(n);
  }
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
#endif
  const unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? int(n) : 1;
}

}  // namespace fastgru
