// How many threads this process can usefully run: the CPUs of its affinity mask and the CPU quota
// of its cgroup, whichever is fewer. `docker run --cpus=2` on a 64-core host leaves all 64 cores in
// the mask but allows 2 CPU-seconds per second: 64 threads would each run a 32nd of the time, and a
// team that meets at a barrier every time step would wait, step after step, for members the
// quota has throttled.
//
// The parsers take file contents, and the reader a root directory for the files, so the tests
// check them on fake cgroup trees.
#pragma once

#include <string>

namespace fastgru {

// The most threads any call runs (the addon accepts thread counts up to this).
constexpr int kMaxThreads = 1024;

// The CPUs a quota allows: ceil(quota / period), at least 1; 0 when it sets no limit or is not a
// quota (an empty string for a missing file, garbage): what cannot be read must not cut the count.
// cgroup v2's cpu.max holds "max 100000" (no limit) or "200000 100000" (quota and period in µs).
int cpus_from_cpu_max(const std::string& cpu_max);
// cgroup v1's cpu.cfs_quota_us ("-1": no limit) and cpu.cfs_period_us.
int cpus_from_cfs(const std::string& quota_us, const std::string& period_us);

// The process's cgroup, from the contents of /proc/self/cgroup: the v2 line "0::/path", or the v1
// line "N:controllers:/path" whose controllers include cpu. Empty when there is none.
std::string cgroup_v2_path(const std::string& proc_self_cgroup);
std::string cgroup_v1_cpu_path(const std::string& proc_self_cgroup);

// A cgroup file system, from /proc/self/mountinfo: where it is mounted, and which cgroup is there
// (its root: "/" on a host; a container's own cgroup in a container without a cgroup namespace,
// whose /proc/self/cgroup still names the full path).
struct CgroupMount {
  std::string root, mount_point;  // mount_point empty: not mounted
};
// The first cgroup2 mount (v2), or the first v1 mount holding the cpu controller.
CgroupMount find_cgroup_mount(const std::string& mountinfo, bool v2);

// The CPUs the cgroup quotas allow this process, 0 for no limit: the least over its cgroup and the
// cgroup's ancestors (a parent's quota throttles its children too), in the v2 hierarchy and in v1's
// cpu hierarchy. Reads <root>/proc/self/cgroup, <root>/proc/self/mountinfo and the quota files
// under <root><mount point>: root is "" for this machine, a fake tree's directory in the tests.
int cgroup_cpu_limit(const std::string& root);

// The CPUs in the calling thread's affinity mask; 0 when unknown (not Linux).
int affinity_cpus();

// Where a thread count came from (thread_source_name gives the strings info() reports).
enum class ThreadSource { kFastgruThreads, kCgroupQuota, kAffinityMask, kHardware };
const char* thread_source_name(ThreadSource source);

struct ThreadCount {
  int threads;
  ThreadSource from;
};

// The cap from the machine's hardware threads (at least 1), the affinity mask's CPUs (0: unknown)
// and the quota's CPUs (0: none): the least of them, at most kMaxThreads. `from` names the limit that
// set it; a mask or quota only when it is below what the hardware (and the mask) would give, so a
// machine without limits reports 'hardware'.
ThreadCount thread_cap_from(int hardware, int affinity, int quota);

// The default thread count from FASTGRU_THREADS (`env`, null when unset) and the cap: the variable
// when it is an integer 1..kMaxThreads (a request above the cap gives the cap, `requested` keeps
// what was asked for), else the cap. requested is 0 when the variable is unset or not such a number.
struct DefaultThreads {
  ThreadCount count;
  int requested;
};
DefaultThreads default_threads_from(const char* env, const ThreadCount& cap);

}  // namespace fastgru
