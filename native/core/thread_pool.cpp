#include "thread_pool.h"

#include <algorithm>
#include <chrono>
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
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace fastgru {

namespace {
using Clock = std::chrono::steady_clock;

// How long a member spins at a barrier before it sleeps. Far longer than a step's imbalance, so a
// running team never sleeps; long enough to ride out a partner that is being woken (on a virtual
// machine an idle vCPU can take hundreds of microseconds to wake, and a sleeping member's vCPU goes
// idle: sleeping at every barrier would chain those wake-ups through the whole time loop).
constexpr std::chrono::microseconds kBarrierSpin{2000};
// How long a worker keeps polling for the next job before it sleeps. Calls that come within this
// time of each other (a benchmark loop, a busy server) find the workers awake on their own cores;
// the scheduler tends to wake a long-idle worker on its waker's core, where it shares one core
// with the caller until the load balancer moves it.
constexpr std::chrono::microseconds kIdleSpin{2000};
// While spinning, yield the core this often, so a team member that the scheduler has queued on the
// spinner's own core (or any other runnable thread there) gets to run.
constexpr std::chrono::microseconds kYieldEvery{50};

// Spins until ready() or the budget has passed; returns ready().
template <class Ready>
bool spin_for(Ready ready, std::chrono::microseconds budget) {
  const auto start = Clock::now();
  auto next_yield = start + kYieldEvery;
  for (;;) {
    for (int i = 0; i < 64; i++) {
      if (ready()) return true;
      FASTGRU_PAUSE();
    }
    const auto now = Clock::now();
    if (now - start >= budget) return ready();
    if (now >= next_yield) {
      std::this_thread::yield();
      next_yield = Clock::now() + kYieldEvery;
    }
  }
}

template <class Ready>
void spin_until(Ready ready) {
  if (spin_for(ready, kBarrierSpin)) return;
  while (!ready()) std::this_thread::yield();
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
  if (spin_for([&] { return generation_.load(std::memory_order_acquire) != gen; }, kBarrierSpin)) return;
#if defined(__linux__)
  sleepers_.fetch_add(1, std::memory_order_seq_cst);
  while (generation_.load(std::memory_order_seq_cst) == gen) futex_wait(&generation_, gen);
  sleepers_.fetch_sub(1, std::memory_order_seq_cst);
#else
  spin_until([&] { return generation_.load(std::memory_order_acquire) != gen; });
#endif
}

Phases::Phases(int members, int64_t phases)
    : members_(size_t(members)),
      slots_(std::min(std::max<int64_t>(phases, 1), 2 * kEpoch)),
      wraps_(phases > 2 * kEpoch),
      shares_(new std::atomic<uint64_t>[size_t(slots_ * members)]),
      done_(new std::atomic<int>[size_t(slots_)]) {
  for (int64_t i = 0; i < slots_ * members; i++) shares_[size_t(i)].store(0, std::memory_order_relaxed);
  for (int64_t i = 0; i < slots_; i++) done_[size_t(i)].store(0, std::memory_order_relaxed);
  for (int h = 0; h < 2; h++) {
    passed_[h].store(0, std::memory_order_relaxed);
    ready_[h].store(h, std::memory_order_relaxed);  // epochs 0 and 1 find their halves cleared
  }
}

int64_t Phases::bytes_for(int members, int64_t phases) {
  const int64_t slots = std::min(std::max<int64_t>(phases, 1), 2 * kEpoch);
  return slots * (8 * int64_t(members) + 4) + int64_t(sizeof(Member)) * members;
}

int64_t Phases::bytes() const { return bytes_for(int(members_.size()), slots_); }

void Phases::enter_epoch(const Team& team, int64_t epoch) {
  // This member has waited for the last phase of epoch - 1 and touches none of its slots again.
  // The last of the team to get here clears that half of the table for epoch + 1. (The team may be
  // smaller than the table's members: a busy pool runs a job alone.)
  const int half = int((epoch - 1) % 2);
  if (passed_[half].fetch_add(1, std::memory_order_acq_rel) + 1 == team.size()) {
    const int64_t first = half * kEpoch;
    for (int m = 0; m < team.size(); m++)
      for (int64_t i = 0; i < kEpoch; i++) shares_[size_t(m * slots_ + first + i)].store(0, std::memory_order_relaxed);
    for (int64_t i = 0; i < kEpoch; i++) done_[size_t(first + i)].store(0, std::memory_order_relaxed);
    passed_[half].store(0, std::memory_order_relaxed);
    ready_[half].store(epoch + 1, std::memory_order_release);
  }
  // This epoch's half was cleared by the last member to finish epoch - 2.
  std::atomic<int64_t>& ready = ready_[epoch % 2];
  spin_until([&] { return ready.load(std::memory_order_acquire) >= epoch; });
}

int Phases::claim(std::atomic<uint64_t>& share, int begin, int end, bool front) {
  constexpr uint64_t kInit = uint64_t(1) << 63;
  uint64_t w = share.load(std::memory_order_acquire);
  for (;;) {
    if (w == 0) {
      // First touch of this share in this phase: whoever gets here first lays it out.
      const uint64_t fresh = kInit | (uint64_t(uint32_t(begin)) << 32) | uint32_t(end);
      if (share.compare_exchange_weak(w, fresh, std::memory_order_acq_rel)) w = fresh;
      continue;
    }
    const int f = int((w >> 32) & 0x7fffffff), b = int(w & 0xffffffff);
    if (f >= b) return -1;
    const uint64_t next = front ? (kInit | (uint64_t(f + 1) << 32) | uint32_t(b)) : (kInit | (uint64_t(f) << 32) | uint32_t(b - 1));
    if (share.compare_exchange_weak(w, next, std::memory_order_acq_rel)) return front ? f : b - 1;
  }
}

void Phases::wait_complete(int64_t phase, int chunks) {
  std::atomic<int>& done = done_[size_t(slot_of(phase))];
  spin_until([&] { return done.load(std::memory_order_acquire) >= chunks; });
}

std::atomic<int64_t> Handoff::given_{0};

bool Handoff::offer(const Item& item) {
  std::lock_guard<std::mutex> lock(mutex_);
  const int pending = pending_.load(std::memory_order_relaxed);
  if (pending >= kSlots || idle_.load(std::memory_order_relaxed) <= pending) return false;
  running_.fetch_add(1, std::memory_order_relaxed);
  slots_[pending] = item;
  pending_.store(pending + 1, std::memory_order_release);
  given_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void Handoff::begin_use(int64_t use) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (use > use_.load(std::memory_order_relaxed)) use_.store(use, std::memory_order_release);
}

bool Handoff::next(Item* item, int64_t use) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (use_.load(std::memory_order_relaxed) != use) return false;
    idle_.fetch_add(1, std::memory_order_relaxed);
  }
  bool got = false;
  // An item is taken under the lock, which also ends the member's idleness: a busy member never
  // counts a waiting member that has already been served. (An offer can still outlive every other
  // helper, when they leave between the check and the offer; its maker then takes it in run().)
  // Items are offered under the lock after their use began: one seen here with use_ unchanged is
  // of this use.
  auto take = [&] {
    if (pending_.load(std::memory_order_acquire) == 0) return false;
    std::lock_guard<std::mutex> lock(mutex_);
    const int pending = pending_.load(std::memory_order_relaxed);
    if (pending == 0 || use_.load(std::memory_order_relaxed) != use) return false;
    *item = slots_[pending - 1];
    pending_.store(pending - 1, std::memory_order_relaxed);
    idle_.fetch_sub(1, std::memory_order_relaxed);
    return true;
  };
  // An offered item counts as running, so none is left when nothing runs. A later use begun
  // means this one's rows are all done (the phases after it began).
  spin_until([&] {
    return (got = take()) || running_.load(std::memory_order_acquire) == 0 ||
           use_.load(std::memory_order_acquire) != use;
  });
  if (!got) {
    std::lock_guard<std::mutex> lock(mutex_);
    idle_.fetch_sub(1, std::memory_order_relaxed);
  }
  return got;
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
    job_id_.fetch_add(1, std::memory_order_release);
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
    spin_for([&] { return job_id_.load(std::memory_order_acquire) != seen; }, kIdleSpin);
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || job_id_.load(std::memory_order_relaxed) != seen; });
      if (stop_) return;
      seen = job_id_.load(std::memory_order_relaxed);
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

const ThreadCount& thread_cap() {
  static const ThreadCount cap = thread_cap_from(int(std::thread::hardware_concurrency()), affinity_cpus(), cgroup_cpu_limit(""));
  return cap;
}

int clamp_threads(int threads) { return std::max(1, std::min(threads, thread_cap().threads)); }

DefaultThreads default_threads_info() { return default_threads_from(std::getenv("FASTGRU_THREADS"), thread_cap()); }

int default_threads() { return default_threads_info().count.threads; }

}  // namespace fastgru
