// A persistent thread pool for SPMD jobs: `run(n, job)` runs job(team) on n threads at once, the
// calling thread as member 0, and returns when all are done. Members meet at team.sync(), a
// spinning barrier cheap enough to pass once per time step. The pool is shared by every model;
// a caller that finds it busy runs its job alone, which gives the same bits (results never depend
// on the thread count) and never waits behind another caller's job.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace fastgru {

// Members spin for a few tens of microseconds (a time step's imbalance), then sleep on a futex, so
// a member that the OS has descheduled — another process on the core — costs one wake-up, not a
// core burnt spinning while it waits for its turn.
class SpinBarrier {
 public:
  void reset(int parties);
  void wait();

 private:
  alignas(64) std::atomic<int> arrived_{0};
  alignas(64) std::atomic<uint32_t> generation_{0};
  std::atomic<int> sleepers_{0};
  int parties_ = 1;
};

class Team {
 public:
  Team(int id, int size, SpinBarrier* barrier) : id_(id), size_(size), barrier_(barrier) {}
  int id() const { return id_; }
  int size() const { return size_; }
  void sync() const {
    if (size_ > 1) barrier_->wait();
  }
  // The part [begin, end) of [0, total) that this member takes, in multiples of `grain`.
  void split(int64_t total, int64_t grain, int64_t* begin, int64_t* end) const;

 private:
  int id_, size_;
  SpinBarrier* barrier_;
};

class ThreadPool {
 public:
  using Job = void (*)(const Team&, void* context);

  ThreadPool() = default;
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Runs job on `threads` threads (1 runs inline). The job must not throw.
  void run(int threads, Job job, void* context);

  template <class F>
  void run(int threads, F& body) {
    run(threads, [](const Team& team, void* ctx) { (*static_cast<F*>(ctx))(team); }, &body);
  }

 private:
  void ensure_workers(int count);
  void worker_main(int index);

  std::atomic<bool> busy_{false};  // set by the caller whose job the workers run
  std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<std::thread> workers_;
  Job job_ = nullptr;
  void* context_ = nullptr;
  int job_threads_ = 0;
  uint64_t job_id_ = 0;
  bool stop_ = false;
  std::atomic<int> remaining_{0};
  SpinBarrier barrier_;
};

// The process-wide pool.
ThreadPool& default_pool();

// The default thread count: FASTGRU_THREADS when set to a positive integer, else the cores this
// process may run on.
int default_threads();

}  // namespace fastgru
