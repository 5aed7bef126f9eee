// A persistent thread pool for SPMD jobs: `run(n, job)` runs job(team) on n threads at once, the
// calling thread as member 0, and returns when all are done. Members meet at team.sync(), a
// spinning barrier cheap enough to pass once per time step. The pool is shared by every model;
// a caller that finds it busy runs its job alone, which gives the same bits (results never depend
// on the thread count) and never waits behind another caller's job.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "cpu_limit.h"

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

 private:
  int id_, size_;
  SpinBarrier* barrier_;
};

// Work in phases: each phase is a number of independent chunks, and a phase begins only when the
// one before it is complete (a time step needs the whole state of the step before). Each member
// first takes the chunks of its own share, front to back, so it keeps working on the same weights
// step after step; then it takes chunks from the back of the others' shares. A member the OS has
// not scheduled yet, or has descheduled, holds nobody up unless it is in the middle of a chunk:
// the others do its share. Results never depend on who computed a chunk.
//
// The table of shares holds at most 2 * kEpoch phases, whatever the job's length (a time loop
// runs a phase or two per step: a table of every phase of a million steps would be far larger
// than the data). Phases are grouped in epochs of kEpoch; epoch e uses half e % 2 of the table,
// which the last member to finish epoch e - 2 clears. So a member enters epoch e only once every
// member has entered epoch e - 1: a member descheduled for over kEpoch phases holds the others
// up there, and nowhere else.
//
// Every member must call run() for the same phases, in order, with the same chunk counts.
// Allocated before the parallel region; nothing is allocated in run().
class Phases {
 public:
  static constexpr int64_t kEpoch = 1024;

  // `phases`: at most how many phases the job runs (the table is sized for the smaller of that
  // and 2 * kEpoch).
  Phases(int members, int64_t phases);
  // The bytes of its table: slots * (8 * members + 4) for the shares and completion counts, and
  // a cache line per member. slots = min(max(phases, 1), 2 * kEpoch).
  int64_t bytes() const;
  static int64_t bytes_for(int members, int64_t phases);

  template <class Work>
  void run(const Team& team, int chunks, Work work) {
    Member& me = members_[size_t(team.id())];
    const int64_t p = me.phase++;
    if (p > 0) wait_complete(p - 1, me.last_chunks);
    if (wraps_ && p > 0 && p % kEpoch == 0) enter_epoch(team, p / kEpoch);
    me.last_chunks = chunks;
    if (chunks <= 0) return;
    const int64_t slot = slot_of(p);
    const int n = team.size();
    int done = 0;
    for (int k = 0; k < n; k++) {
      const int owner = (team.id() + k) % n;
      const int begin = int(int64_t(chunks) * owner / n), end = int(int64_t(chunks) * (owner + 1) / n);
      std::atomic<uint64_t>& share = shares_[size_t(owner * slots_ + slot)];
      for (int c; (c = claim(share, begin, end, k == 0)) >= 0; done++) work(c);
    }
    // One count per member and phase, after all its chunks: the phase is complete when the counts
    // add up to `chunks` (a member that took nothing adds nothing).
    if (done) done_[size_t(slot)].fetch_add(done, std::memory_order_acq_rel);
  }

  // Waits until every phase run so far is complete (before reading what they wrote).
  void finish(const Team& team) {
    Member& me = members_[size_t(team.id())];
    if (me.phase > 0) wait_complete(me.phase - 1, me.last_chunks);
  }

 private:
  struct alignas(64) Member {
    int64_t phase = 0;
    int last_chunks = 0;
  };
  static int claim(std::atomic<uint64_t>& share, int begin, int end, bool front);
  int64_t slot_of(int64_t phase) const { return wraps_ ? phase % slots_ : phase; }
  void wait_complete(int64_t phase, int chunks);
  // At the first phase of epoch e >= 1, once the member has waited for epoch e - 1's last phase.
  void enter_epoch(const Team& team, int64_t epoch);

  std::vector<Member> members_;
  int64_t slots_;
  bool wraps_;
  // [member][slot]: 1 << 63 | front << 32 | back. Member-major, so the members' claims in one
  // phase touch different cache lines.
  std::unique_ptr<std::atomic<uint64_t>[]> shares_;
  std::unique_ptr<std::atomic<int>[]> done_;          // [slot]: chunks completed
  // Per half of the table: members that have finished its epoch, and the epoch it is cleared for.
  std::atomic<int> passed_[2];
  std::atomic<int64_t> ready_[2];
};

// Rows of a time loop passed from a busy member to one that has run out of work. Sequences never
// interact, so a member running rows [r0, r1) from some step on may, at a step boundary, give the
// back part of them to an idle member, and both run to the end: on a shared machine, where one
// core is often slowed for a while (another tenant on its sibling hyperthread), the team then
// finishes with the average of the members' speeds rather than the slowest. Results never depend
// on who ran a row. A Handoff serves one phase per `use`, numbered upwards: a member still leaving
// an earlier use's run() (descheduled there while the others went on) takes no rows of a later
// one, and leaves as soon as it begins.
class Handoff {
 public:
  struct Item {
    int64_t r0, r1, step;
  };
  Handoff() = default;
  Handoff(const Handoff&) = delete;
  Handoff& operator=(const Handoff&) = delete;

  // One phase of `phases` over the row groups [cuts[g], cuts[g + 1]), each run by
  // run({cuts[g], cuts[g + 1], first_step}); then the member runs rows offered by others until no
  // item is running. Every member calls it; when it returns, every row of the phase is done.
  // `use` is greater than every earlier use of this Handoff.
  template <class Run>
  void run(Phases& phases, const Team& team, const std::vector<int64_t>& cuts, int64_t first_step, Run run,
           int64_t use = 0) {
    begin_use(use);
    phases.run(team, int(cuts.size()) - 1, [&](int g) {
      running_.fetch_add(1, std::memory_order_relaxed);
      run(Item{cuts[size_t(g)], cuts[size_t(g) + 1], first_step});
      running_.fetch_sub(1, std::memory_order_release);
    });
    Item item;
    while (next(&item, use)) {
      run(item);
      running_.fetch_sub(1, std::memory_order_release);
    }
  }
  // Called by a member at a step boundary of its rows [r0, r1), cheap enough for every step: when
  // a member waits for work, offers it the back half of the rows that run the next step (the
  // first `active` rows) from step `next` on. Returns the end of the rows the caller keeps on
  // with: r1, or the start of the half given away. Both halves have at least `grain` rows, the
  // kept one a multiple of grain.
  int64_t give_half(int64_t r0, int64_t r1, int64_t active, int64_t next, int64_t grain) {
    if (idle_.load(std::memory_order_relaxed) <= int(pending_.load(std::memory_order_relaxed))) return r1;
    const int64_t live = std::min(r1, active) - r0;
    const int64_t mid = r0 + (live / 2 + grain - 1) / grain * grain;
    return live >= 2 * grain && offer({mid, r1, next}) ? mid : r1;
  }
  // Items given away so far, by every Handoff in the process (for the tests).
  static int64_t given_total() { return given_.load(std::memory_order_relaxed); }

 private:
  // Offers an item; true when a waiting member will run it (the caller then stops before item.r0).
  bool offer(const Item& item);
  // Waits for an offered item (true) or until no item runs or a later use has begun (false).
  bool next(Item* item, int64_t use);
  void begin_use(int64_t use);

  static constexpr int kSlots = 64;
  std::mutex mutex_;
  Item slots_[kSlots];
  std::atomic<int> pending_{0};  // items in slots_
  std::atomic<int> running_{0};  // items started (or offered) and not finished
  std::atomic<int> idle_{0};     // members waiting in run() without an item
  std::atomic<int64_t> use_{0};  // the latest use begun; raised under mutex_, as items are offered
  static std::atomic<int64_t> given_;
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
  std::atomic<uint64_t> job_id_{0};
  bool stop_ = false;
  std::atomic<int> remaining_{0};
  SpinBarrier barrier_;
};

// The process-wide pool.
ThreadPool& default_pool();

// The most threads a call runs in this process: the hardware threads, fewer when the affinity mask
// or the cgroup CPU quota allows fewer (cpu_limit.h). Read once, on first use: calls clamp to it.
const ThreadCount& thread_cap();

// A thread count asked for, clamped to [1, thread_cap()].
int clamp_threads(int threads);

// The default thread count and where it came from: FASTGRU_THREADS when set to an integer
// 1..kMaxThreads (clamped to the cap), else the cap. Reads the variable on every call.
DefaultThreads default_threads_info();
int default_threads();

}  // namespace fastgru
