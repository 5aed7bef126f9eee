// The thread pool: many jobs of 1-4 threads (every member runs once per job, with its own id),
// team_split covering [0, total) exactly, the barrier with 1-4 threads over many rounds, two OS
// threads calling run() on one pool at once (the one that finds it busy runs its job alone:
// results still correct), a job that calls run() from inside (runs inline), a pool destroyed right
// after use, Handoff passing rows from a slow member to idle ones, and default_threads() reading
// FASTGRU_THREADS up to the cap.
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "check.h"
#include "testing.h"
#include "thread_pool.h"

using namespace fastgru;

namespace {

// Sum of 0..n-1 over a team: each member sums its split, then member 0 adds the partials after a
// barrier. Also counts, per id, how many times each member ran.
struct SumJob {
  const std::vector<int64_t>* data;
  std::vector<int64_t> partial = std::vector<int64_t>(8, 0);
  std::atomic<int> ran[8];
  std::atomic<int> bad_team{0};
  int expected_size = 0;
  int64_t total = 0;
  SumJob() {
    for (auto& r : ran) r = 0;
  }
  void operator()(const Team& team) {
    if (team.size() != expected_size && team.size() != 1) bad_team++;
    if (team.id() < 0 || team.id() >= team.size()) bad_team++;
    ran[team.id()]++;
    int64_t b, e;
    team_split(team, int64_t(data->size()), 16, &b, &e);
    int64_t s = 0;
    for (int64_t i = b; i < e; i++) s += (*data)[size_t(i)];
    partial[size_t(team.id())] = s;
    team.sync();
    if (team.id() == 0) {
      total = 0;
      for (int i = 0; i < team.size(); i++) total += partial[size_t(i)];
    }
  }
};

int64_t expected_sum(int64_t n) { return n * (n - 1) / 2; }

}  // namespace

int main() {
  // team_split: the members' parts tile [0, total) in order, in multiples of grain.
  {
    int64_t bad = 0;
    for (int size = 1; size <= 5; size++)
      for (int64_t total = 0; total <= 70; total++)
        for (int64_t grain : {1, 3, 4, 8, 24}) {
          int64_t next = 0;
          for (int id = 0; id < size; id++) {
            SpinBarrier unused;
            Team t(id, size, &unused);
            int64_t b, e;
            team_split(t, total, grain, &b, &e);
            if (b != next || e < b || (b % grain != 0 && b != total)) bad++;
            next = e;
          }
          if (next != total) bad++;
        }
    EXPECT(bad == 0, "team_split: %lld splits do not tile [0, total) in multiples of grain", (long long)bad);
    std::printf("%s team_split tiles [0, total) for sizes 1-5, totals 0-70, grains 1, 3, 4, 8, 24\n",
                bad ? "FAIL" : "ok  ");
  }

  std::vector<int64_t> data(10007);
  std::iota(data.begin(), data.end(), 0);
  const int64_t want = expected_sum(int64_t(data.size()));

  // Many jobs, thread counts varying from job to job.
  {
    ThreadPool pool;
    int wrong = 0, jobs = 0;
    for (int round = 0; round < 3000; round++) {
      const int threads = 1 + round % 4;
      SumJob job;
      job.data = &data;
      job.expected_size = threads;
      pool.run(threads, job);
      jobs++;
      bool ok = job.total == want && job.bad_team == 0;
      for (int id = 0; id < 8; id++) ok = ok && job.ran[id] == (id < threads ? 1 : 0);
      if (!ok && wrong++ < 5)
        EXPECT(false, "job %d on %d threads: sum %lld (expected %lld), runs per id %d %d %d %d, bad teams %d", round,
               threads, (long long)job.total, (long long)want, job.ran[0].load(), job.ran[1].load(), job.ran[2].load(),
               job.ran[3].load(), job.bad_team.load());
    }
    EXPECT(wrong == 0, "%d of %d jobs wrong", wrong, jobs);
    std::printf("%s %d jobs of 1-4 threads on one pool: every member ran once with its own id, sums correct\n",
                wrong ? "FAIL" : "ok  ", jobs);
  }

  // The barrier: every member writes its slot for round r, syncs, and must then see every slot at r.
  for (int threads = 1; threads <= 4; threads++) {
    ThreadPool pool;
    const int rounds = 2000;
    std::vector<std::atomic<int>> slot(4);
    for (auto& s : slot) s = -1;
    std::atomic<int> stale{0};
    auto body = [&](const Team& team) {
      for (int r = 0; r < rounds; r++) {
        slot[size_t(team.id())].store(r, std::memory_order_relaxed);
        team.sync();
        for (int i = 0; i < team.size(); i++)
          if (slot[size_t(i)].load(std::memory_order_relaxed) != r) stale++;
        team.sync();
      }
    };
    pool.run(threads, body);
    EXPECT(stale == 0, "barrier with %d threads: %d stale reads over %d rounds", threads, stale.load(), rounds);
    std::printf("%s barrier with %d thread%s: %d rounds, no member passed early\n", stale ? "FAIL" : "ok  ", threads,
                threads > 1 ? "s" : "", rounds);
  }

  // Two OS threads calling run() on the same pool at once.
  {
    ThreadPool pool;
    std::atomic<int> wrong{0}, inline_runs{0}, pooled_runs{0};
    auto caller = [&](int seed) {
      for (int round = 0; round < 1500; round++) {
        SumJob job;
        job.data = &data;
        job.expected_size = 2 + (round + seed) % 3;
        pool.run(job.expected_size, job);
        if (job.total != want || job.bad_team != 0) wrong++;
        int members = 0;
        for (int id = 0; id < 8; id++) members += job.ran[id];
        (members == 1 ? inline_runs : pooled_runs)++;
        if (members != 1 && members != job.expected_size) wrong++;
      }
    };
    std::thread a(caller, 0), b(caller, 1);
    a.join();
    b.join();
    EXPECT(wrong == 0, "two callers at once: %d wrong results", wrong.load());
    std::printf("%s two OS threads x 1500 jobs on one pool: all sums correct (%d ran on the pool, %d alone because "
                "it was busy)\n",
                wrong ? "FAIL" : "ok  ", pooled_runs.load(), inline_runs.load());
  }

  // A job that runs a job of its own, from member 0 and from a worker: the inner one runs inline.
  {
    ThreadPool pool;
    std::atomic<int> wrong{0}, inner_sizes{0};
    auto outer = [&](const Team& team) {
      SumJob job;
      job.data = &data;
      job.expected_size = 3;
      pool.run(3, job);
      if (job.total != want) wrong++;
      int members = 0;
      for (int id = 0; id < 8; id++) members += job.ran[id];
      inner_sizes += members;
      team.sync();
    };
    for (int round = 0; round < 200; round++) pool.run(2, outer);
    EXPECT(wrong == 0 && inner_sizes == 200 * 2, "nested run(): %d wrong, %d inner members (expected %d)",
           wrong.load(), inner_sizes.load(), 400);
    std::printf("%s nested run() from members 0 and 1 of a running job: runs inline, sums correct\n",
                wrong == 0 && inner_sizes == 400 ? "ok  " : "FAIL");
  }

  // Pools created, used and destroyed in a loop (workers joined each time).
  {
    int wrong = 0;
    for (int i = 0; i < 50; i++) {
      ThreadPool pool;
      SumJob job;
      job.data = &data;
      job.expected_size = 1 + i % 4;
      pool.run(job.expected_size, job);
      wrong += job.total != want;
    }
    EXPECT(wrong == 0, "short-lived pools: %d wrong", wrong);
    std::printf("%s 50 pools created, used once and destroyed\n", wrong ? "FAIL" : "ok  ");
  }

  // The process-wide pool is one object.
  EXPECT(&default_pool() == &default_pool(), "default_pool() returns one pool");

  // Handoff: groups of rows run S steps each, as the GRU's row groups do; the member that runs
  // group 0 is slow (it sleeps at every step), so the others run out of work and take the back
  // half of busy members' rows. Every row must run every step exactly once, in order.
  for (int threads = 2; threads <= 4; threads++) {
    ThreadPool pool;
    const int64_t rows = 48, steps = 60;
    std::vector<std::atomic<int64_t>> next(static_cast<size_t>(rows));
    for (auto& n : next) n = 0;
    std::atomic<int> disorder{0};
    const int64_t given0 = Handoff::given_total();
    Phases phases(threads, 1);
    Handoff handoff;
    std::vector<int64_t> cuts{0};
    for (int g = 1; g < threads; g++) cuts.push_back(rows * g / threads / 4 * 4);
    cuts.push_back(rows);
    auto body = [&](const Team& team) {
      bool slow = false;
      auto run_rows = [&](const Handoff::Item& item) {
        int64_t r1 = item.r1;
        for (int64_t s = item.step; s < steps; s++) {
          for (int64_t r = item.r0; r < r1; r++) {
            int64_t expected = s;
            if (!next[size_t(r)].compare_exchange_strong(expected, s + 1)) disorder++;
          }
          if (slow) std::this_thread::sleep_for(std::chrono::microseconds(200));
          if (s + 1 < steps) r1 = handoff.give_half(item.r0, r1, rows, s + 1, 4);
        }
      };
      // The member that runs group 0 is slow; rows it takes from others are not.
      handoff.run(phases, team, cuts, 0, [&](const Handoff::Item& item) {
        slow = item.r0 == 0 && item.step == 0;
        run_rows(item);
        slow = false;
      });
    };
    pool.run(threads, body);
    int64_t unfinished = 0;
    for (auto& n : next) unfinished += n != steps;
    const int64_t given = Handoff::given_total() - given0;
    EXPECT(disorder == 0 && unfinished == 0 && given > 0,
           "handoff with %d threads: %d steps out of order, %lld rows unfinished, %lld items given", threads,
           disorder.load(), (long long)unfinished, (long long)given);
    std::printf("%s handoff with %d threads, one slow member: %lld rows x %lld steps each run once, in order; %lld "
                "items given to idle members\n",
                disorder == 0 && unfinished == 0 && given > 0 ? "ok  " : "FAIL", threads, (long long)rows,
                (long long)steps, (long long)given);
  }

  // Phases over more phases than its table holds (2 * kEpoch slots, reused epoch after epoch): every
  // chunk of every phase runs exactly once, and only after the phase before it is complete. One
  // member sleeps now and then, so the others run ahead (and wait at an epoch for it); a team
  // smaller than the table's members (a busy pool runs a job alone) must not wait for the missing.
  for (int members = 1; members <= 4; members++)
    for (bool alone : {false, true}) {
      if (members == 1 && alone) continue;
      ThreadPool pool;
      const int64_t count = 3 * 2 * Phases::kEpoch + 37;
      auto chunks_of = [](int64_t p) { return int(p % 7 == 0 ? 0 : 1 + p % 5); };
      std::vector<int64_t> first(size_t(count) + 1);
      for (int64_t p = 0; p < count; p++) first[size_t(p) + 1] = first[size_t(p)] + chunks_of(p);
      std::vector<std::atomic<int>> ran(size_t(first.back()));
      for (auto& r : ran) r = 0;
      std::atomic<int64_t> early{0};
      Phases phases(members, count);
      auto body = [&](const Team& team) {
        for (int64_t p = 0; p < count; p++) {
          if (team.id() == 1 && p % 1500 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(3));
          phases.run(team, chunks_of(p), [&](int c) {
            // The last non-empty phase before p must be complete.
            for (int64_t q = p - 1; q >= 0; q--) {
              if (chunks_of(q) == 0) continue;
              for (int64_t i = first[size_t(q)]; i < first[size_t(q) + 1]; i++) early += ran[size_t(i)] != 1;
              break;
            }
            ran[size_t(first[size_t(p)] + c)]++;
          });
        }
        phases.finish(team);
      };
      if (alone) {
        SpinBarrier barrier;
        body(Team(0, 1, &barrier));
      } else {
        pool.run(members, body);
      }
      int64_t wrong = 0;
      for (auto& r : ran) wrong += r != 1;
      EXPECT(wrong == 0 && early == 0, "phases, %d members%s: %lld chunks not run exactly once, %lld run early", members,
             alone ? " (team of 1)" : "", (long long)wrong, (long long)early.load());
      std::printf("%s phases: %lld phases on a table of %lld slots, %d members%s: every chunk once, in phase order\n",
                  wrong == 0 && early == 0 ? "ok  " : "FAIL", (long long)count, (long long)(2 * Phases::kEpoch), members,
                  alone ? ", run by a team of 1" : "");
    }
  // The table's bytes: one slot per phase up to 2 * kEpoch, whatever the job's length.
  {
    const int64_t line = 64;
    EXPECT(Phases(2, 10).bytes() == 10 * (16 + 4) + 2 * line, "Phases(2, 10).bytes() = %lld",
           (long long)Phases(2, 10).bytes());
    EXPECT(Phases(3, int64_t(1) << 40).bytes() == 2 * Phases::kEpoch * (24 + 4) + 3 * line,
           "Phases(3, 2^40).bytes() = %lld", (long long)Phases(3, int64_t(1) << 40).bytes());
    EXPECT(Phases::bytes_for(3, 0) == 28 + 3 * line, "Phases::bytes_for(3, 0) = %lld", (long long)Phases::bytes_for(3, 0));
    std::printf("ok   phases: the table takes slots x (8 x members + 4) bytes, at most %lld slots\n",
                (long long)(2 * Phases::kEpoch));
  }

  // One Handoff reused phase after phase (the GRU's windows): uses numbered upwards, the member
  // that runs group 0 slow in each. Every row runs every step of every use exactly once, in order.
  for (int threads = 2; threads <= 4; threads++) {
    ThreadPool pool;
    const int64_t rows = 40, steps = 12, uses = 25;
    std::vector<std::atomic<int64_t>> next(static_cast<size_t>(rows));
    for (auto& n : next) n = 0;
    std::atomic<int> disorder{0};
    const int64_t given0 = Handoff::given_total();
    Phases phases(threads, uses);
    Handoff handoff;
    std::vector<int64_t> cuts{0};
    for (int g = 1; g < threads; g++) cuts.push_back(rows * g / threads / 4 * 4);
    cuts.push_back(rows);
    auto body = [&](const Team& team) {
      for (int64_t u = 0; u < uses; u++) {
        const int64_t s0 = u * steps, s1 = s0 + steps;
        bool slow = false;
        auto run_rows = [&](const Handoff::Item& item) {
          int64_t r1 = item.r1;
          for (int64_t s = item.step; s < s1; s++) {
            for (int64_t r = item.r0; r < r1; r++) {
              int64_t expected = s;
              if (!next[size_t(r)].compare_exchange_strong(expected, s + 1)) disorder++;
            }
            if (slow) std::this_thread::sleep_for(std::chrono::microseconds(100));
            if (s + 1 < s1) r1 = handoff.give_half(item.r0, r1, rows, s + 1, 4);
          }
        };
        handoff.run(phases, team, cuts, s0, [&](const Handoff::Item& item) {
          slow = item.r0 == 0 && item.step == s0;
          run_rows(item);
          slow = false;
        }, u);
      }
      phases.finish(team);
    };
    pool.run(threads, body);
    int64_t unfinished = 0;
    for (auto& n : next) unfinished += n != steps * uses;
    const int64_t given = Handoff::given_total() - given0;
    EXPECT(disorder == 0 && unfinished == 0 && given > 0,
           "handoff reused %lld times with %d threads: %d steps out of order, %lld rows unfinished, %lld items given",
           (long long)uses, threads, disorder.load(), (long long)unfinished, (long long)given);
    std::printf("%s handoff reused for %lld phases with %d threads: every row runs every step once, in order; %lld "
                "items given\n",
                disorder == 0 && unfinished == 0 && given > 0 ? "ok  " : "FAIL", (long long)uses, threads,
                (long long)given);
  }

  // default_threads(): FASTGRU_THREADS when a positive integer (up to the cap), else the cores this
  // process may use (the cap).
  {
    unsetenv("FASTGRU_THREADS");
    const int cores = default_threads();
    EXPECT(cores >= 1 && cores == thread_cap().threads, "default_threads() = %d, cap %d", cores, thread_cap().threads);
    struct Case {
      const char* value;
      int expected;
    };
    const Case cases[] = {{"3", std::min(3, cores)}, {"1", 1}, {"1024", cores}, {"0", cores}, {"-2", cores}, {"abc", cores},
                          {"2x", cores}, {"", cores}, {"1025", cores}, {"99999999999999999999", cores}};
    for (const Case& c : cases) {
      setenv("FASTGRU_THREADS", c.value, 1);
      const int got = default_threads();
      EXPECT(got == c.expected, "FASTGRU_THREADS='%s': default_threads() = %d, expected %d", c.value, got, c.expected);
    }
    unsetenv("FASTGRU_THREADS");
    std::printf("ok   default_threads() = %d; FASTGRU_THREADS honoured up to that cap, ignored when not 1..1024\n", cores);
  }
  return check::finish("thread_pool");
}
