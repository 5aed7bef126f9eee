// The CPUs this process may use (cpu_limit.h): the quota files' parsers (cgroup v2's cpu.max, v1's
// cpu.cfs_quota_us and cpu.cfs_period_us) on limits, "max", -1, missing files and garbage; the
// process's cgroup from /proc/self/cgroup and its mount from /proc/self/mountinfo; the whole
// reader on fake cgroup trees written in a temporary directory (v2, v1 as a host and as a container
// sees it, nested limits, the mountinfo-less fallback, hybrid hosts); the cap from hardware, mask
// and quota with the source it reports; FASTGRU_THREADS against the cap; and what this machine gives.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>

#include "check.h"
#include "cpu_limit.h"
#include "thread_pool.h"

using namespace fastgru;
namespace fs = std::filesystem;

namespace {

// A fake root: files written under a fresh temporary directory, removed at the end.
struct FakeRoot {
  fs::path dir;
  explicit FakeRoot(const std::string& name) {
    dir = fs::temp_directory_path() / ("fastgru-cpu-limit-" + name + "-" + std::to_string(std::random_device()()));
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  ~FakeRoot() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  FakeRoot& file(const std::string& path, const std::string& contents) {
    const fs::path p = dir / path.substr(1);
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << contents;
    return *this;
  }
  int limit() const { return cgroup_cpu_limit(dir.string()); }
};

const char* kV2Mount = "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";

const char* name(ThreadSource s) { return thread_source_name(s); }

}  // namespace

int main() {
  // cpu.max: ceil(quota / period), at least 1; "max", garbage and missing (empty) are no limit.
  {
    struct Case {
      const char* text;
      int cpus;
    };
    const Case cases[] = {
        {"max 100000\n", 0}, {"200000 100000\n", 2}, {"150000 100000\n", 2}, {"100000 100000", 1}, {"50000 100000\n", 1},
        {"1 100000\n", 1}, {"6400000 100000\n", 64}, {"1000000000 1000\n", kMaxThreads}, {"", 0}, {"\n", 0},
        {"garbage\n", 0}, {"200000\n", 0}, {"200000 0\n", 0}, {"0 100000\n", 0}, {"-5 100000\n", 0}, {"abc 100000\n", 0},
        {"200000 100000 7\n", 0}, {"2e5 100000\n", 0}, {"99999999999999999999999 100000\n", 0}, {"max\n", 0}};
    for (const Case& c : cases)
      EXPECT(cpus_from_cpu_max(c.text) == c.cpus, "cpus_from_cpu_max('%s') = %d, expected %d", c.text,
             cpus_from_cpu_max(c.text), c.cpus);
    std::printf("ok   cpus_from_cpu_max: %zu contents (limits, max, garbage, empty)\n", sizeof cases / sizeof cases[0]);
  }
  {
    struct Case {
      const char *quota, *period;
      int cpus;
    };
    const Case cases[] = {{"-1\n", "100000\n", 0}, {"200000\n", "100000\n", 2}, {"250000\n", "100000\n", 3},
                          {"50000\n", "100000\n", 1}, {"", "100000\n", 0},          {"200000\n", "", 0},
                          {"x\n", "100000\n", 0},     {"200000\n", "0\n", 0},       {"200000\n", "-1\n", 0},
                          {"200000 1\n", "100000\n", 0}};
    for (const Case& c : cases)
      EXPECT(cpus_from_cfs(c.quota, c.period) == c.cpus, "cpus_from_cfs('%s', '%s') = %d, expected %d", c.quota, c.period,
             cpus_from_cfs(c.quota, c.period), c.cpus);
    std::printf("ok   cpus_from_cfs: %zu quota/period pairs (-1, limits, garbage, missing)\n", sizeof cases / sizeof cases[0]);
  }

  // /proc/self/cgroup: v2's "0::" line, v1's line whose controllers include exactly "cpu".
  {
    struct Case {
      const char *text, *v2, *v1;
    };
    const Case cases[] = {
        {"0::/user.slice/app.scope\n", "/user.slice/app.scope", ""},
        {"12:cpu,cpuacct:/docker/abc\n11:cpuset:/docker/abc\n0::/\n", "/", "/docker/abc"},
        {"4:cpuacct:/a\n3:cpuset:/b\n", "", ""},
        {"2:cpuacct,cpu:/x\n", "", "/x"},
        {"5:cpu:/a:b\n", "", "/a:b"},
        {"1:name=systemd:/s\n0::/\n", "/", ""},
        {"hello\n", "", ""},
        {"", "", ""},
    };
    for (const Case& c : cases) {
      EXPECT(cgroup_v2_path(c.text) == c.v2, "cgroup_v2_path('%s') = '%s', expected '%s'", c.text, cgroup_v2_path(c.text).c_str(), c.v2);
      EXPECT(cgroup_v1_cpu_path(c.text) == c.v1, "cgroup_v1_cpu_path('%s') = '%s', expected '%s'", c.text,
             cgroup_v1_cpu_path(c.text).c_str(), c.v1);
    }
    std::printf("ok   /proc/self/cgroup: %zu files, v2 and v1 cpu paths\n", sizeof cases / sizeof cases[0]);
  }

  // mountinfo: the cgroup2 mount; the v1 mount with cpu among its super options (not cpuacct or cpuset).
  {
    const std::string host =
        "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
        "33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
        "34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n"
        "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
        "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
    CgroupMount v1 = find_cgroup_mount(host, false), v2 = find_cgroup_mount(host, true);
    EXPECT(v1.root == "/" && v1.mount_point == "/sys/fs/cgroup/cpu", "v1 mount: '%s' at '%s'", v1.root.c_str(), v1.mount_point.c_str());
    EXPECT(v2.root == "/" && v2.mount_point == "/sys/fs/cgroup/unified", "v2 mount: '%s' at '%s'", v2.root.c_str(), v2.mount_point.c_str());
    // A container without a cgroup namespace: its own cgroup is the mount's root. Optional fields
    // (shared:, master:) sit before the "-".
    const std::string docker =
        "1286 1285 0:29 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro,nosuid master:11 shared:9 - cgroup cgroup rw,cpu,cpuacct\n";
    v1 = find_cgroup_mount(docker, false);
    EXPECT(v1.root == "/docker/abc" && v1.mount_point == "/sys/fs/cgroup/cpu,cpuacct", "docker v1 mount: '%s' at '%s'",
           v1.root.c_str(), v1.mount_point.c_str());
    EXPECT(find_cgroup_mount(docker, true).mount_point.empty(), "no cgroup2 mount in the docker v1 mountinfo");
    v2 = find_cgroup_mount("7 1 0:5 / /my\\040cgroups rw - cgroup2 none rw\n", true);
    EXPECT(v2.mount_point == "/my cgroups", "escaped mount point: '%s'", v2.mount_point.c_str());
    EXPECT(find_cgroup_mount("garbage\n- cgroup2\n1 2 3 4 5 -\n", true).mount_point.empty(), "garbage mountinfo: no mount");
    std::printf("ok   mountinfo: host (hybrid), docker v1 with a root, escaped paths, garbage\n");
  }

  // The whole reader on fake trees.
  {
    int trees = 0;
    auto expect_limit = [&](const FakeRoot& root, int want, const char* what) {
      const int got = root.limit();
      EXPECT(got == want, "%s: cgroup_cpu_limit = %d, expected %d", what, got, want);
      trees++;
    };
    {
      FakeRoot r("v2-ns");  // a container with its own cgroup namespace: its cgroup is "/"
      r.file("/proc/self/cgroup", "0::/\n").file("/proc/self/mountinfo", kV2Mount).file("/sys/fs/cgroup/cpu.max", "200000 100000\n");
      expect_limit(r, 2, "v2, docker --cpus=2 seen from inside");
    }
    {
      FakeRoot r("v2-nested");
      r.file("/proc/self/cgroup", "0::/a/b/c\n").file("/proc/self/mountinfo", kV2Mount);
      r.file("/sys/fs/cgroup/a/cpu.max", "300000 100000\n").file("/sys/fs/cgroup/a/b/cpu.max", "max 100000\n");
      r.file("/sys/fs/cgroup/a/b/c/cpu.max", "max 100000\n");
      expect_limit(r, 3, "v2, the grandparent's quota");
      r.file("/sys/fs/cgroup/a/b/c/cpu.max", "150000 100000\n");
      expect_limit(r, 2, "v2, the process's own quota below the grandparent's");
      r.file("/sys/fs/cgroup/cpu.max", "100000 100000\n");
      expect_limit(r, 1, "v2, the mount's root quota below both");
    }
    {
      FakeRoot r("v2-max");
      r.file("/proc/self/cgroup", "0::/user.slice/x.scope\n").file("/proc/self/mountinfo", kV2Mount);
      r.file("/sys/fs/cgroup/user.slice/cpu.max", "max 100000\n").file("/sys/fs/cgroup/user.slice/x.scope/cpu.max", "max 100000\n");
      expect_limit(r, 0, "v2, max everywhere");
      r.file("/sys/fs/cgroup/user.slice/x.scope/cpu.max", "lots of garbage\n");
      expect_limit(r, 0, "v2, garbage in cpu.max");
    }
    {
      FakeRoot r("v2-missing");
      r.file("/proc/self/cgroup", "0::/gone\n").file("/proc/self/mountinfo", kV2Mount);
      expect_limit(r, 0, "v2, no cpu.max files at all");
    }
    {
      FakeRoot r("v1-docker");  // docker on a v1 host: the mount shows the container's own cgroup
      r.file("/proc/self/cgroup", "12:cpu,cpuacct:/docker/abc\n11:cpuset:/docker/abc\n1:name=systemd:/docker/abc\n");
      r.file("/proc/self/mountinfo",
             "1286 1285 0:29 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro master:11 - cgroup cgroup rw,cpu,cpuacct\n");
      r.file("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "200000\n").file("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
      expect_limit(r, 2, "v1 inside docker --cpus=2 (mount root /docker/abc)");
    }
    {
      FakeRoot r("v1-host");  // the same process seen on the host: the full path under the mount
      r.file("/proc/self/cgroup", "12:cpu,cpuacct:/docker/abc\n");
      r.file("/proc/self/mountinfo", "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n");
      const std::string d = "/sys/fs/cgroup/cpu,cpuacct";
      r.file(d + "/cpu.cfs_quota_us", "-1\n").file(d + "/cpu.cfs_period_us", "100000\n");
      r.file(d + "/docker/cpu.cfs_quota_us", "150000\n").file(d + "/docker/cpu.cfs_period_us", "100000\n");
      r.file(d + "/docker/abc/cpu.cfs_quota_us", "-1\n").file(d + "/docker/abc/cpu.cfs_period_us", "100000\n");
      expect_limit(r, 2, "v1, the parent's 1.5 CPUs");
      r.file(d + "/docker/cpu.cfs_quota_us", "-1\n");
      expect_limit(r, 0, "v1, -1 everywhere");
      r.file(d + "/docker/abc/cpu.cfs_quota_us", "400000\n").file(d + "/docker/abc/cpu.cfs_period_us", "");
      expect_limit(r, 0, "v1, a quota without its period");
    }
    {
      FakeRoot r("hybrid");  // this kind of host: v1 cpu at /sys/fs/cgroup/cpu, cgroup2 (no cpu controller) at unified
      r.file("/proc/self/cgroup", "9:name=systemd:/\n2:cpuacct:/\n1:cpu:/job\n0::/job\n");
      r.file("/proc/self/mountinfo",
             "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
             "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n");
      r.file("/sys/fs/cgroup/cpu/job/cpu.cfs_quota_us", "400000\n").file("/sys/fs/cgroup/cpu/job/cpu.cfs_period_us", "100000\n");
      r.file("/sys/fs/cgroup/unified/job/cgroup.procs", "1\n");
      expect_limit(r, 4, "hybrid, the v1 cpu quota");
      r.file("/sys/fs/cgroup/unified/job/cpu.max", "300000 100000\n");
      expect_limit(r, 3, "hybrid, the lesser of v1 and v2");
    }
    {
      FakeRoot r("fallback");  // no mountinfo: the usual mount points
      r.file("/proc/self/cgroup", "0::/x\n").file("/sys/fs/cgroup/x/cpu.max", "100000 100000\n");
      expect_limit(r, 1, "v2 without mountinfo: /sys/fs/cgroup");
      r.file("/proc/self/cgroup", "3:cpu,cpuacct:/y\n");
      r.file("/sys/fs/cgroup/cpu,cpuacct/y/cpu.cfs_quota_us", "300000\n").file("/sys/fs/cgroup/cpu,cpuacct/y/cpu.cfs_period_us", "100000\n");
      expect_limit(r, 3, "v1 without mountinfo: /sys/fs/cgroup/cpu,cpuacct");
    }
    {
      FakeRoot r("outside");  // a path outside the mount's root ("..": another namespace): the mount's own files
      r.file("/proc/self/cgroup", "0::/../../elsewhere\n").file("/proc/self/mountinfo", kV2Mount);
      r.file("/sys/fs/cgroup/cpu.max", "200000 100000\n").file("/sys/fs/cgroup/elsewhere/cpu.max", "100000 100000\n");
      expect_limit(r, 2, "a path with .., the mount point's quota");
    }
    {
      FakeRoot r("nothing");
      expect_limit(r, 0, "no /proc/self/cgroup");
      r.file("/proc/self/cgroup", "garbage\n").file("/proc/self/mountinfo", "garbage\n");
      expect_limit(r, 0, "garbage /proc/self/cgroup and mountinfo");
      r.file("/proc/self/cgroup", "0::/\n");
      expect_limit(r, 0, "a cgroup but no cgroup2 mount");
    }
    std::printf("ok   cgroup_cpu_limit on %d fake trees (v2, nested, max, v1 host and container, hybrid, fallback, missing, garbage)\n",
                trees);
  }

  // The cap and its source: the least limit, a mask or quota only when it is below the others.
  {
    struct Case {
      int hardware, affinity, quota, threads;
      ThreadSource from;
    };
    const Case cases[] = {
        {64, 64, 2, 2, ThreadSource::kCgroupQuota},    {64, 4, 0, 4, ThreadSource::kAffinityMask},
        {64, 64, 0, 64, ThreadSource::kHardware},      {64, 0, 0, 64, ThreadSource::kHardware},
        {8, 4, 4, 4, ThreadSource::kAffinityMask},     {8, 4, 3, 3, ThreadSource::kCgroupQuota},
        {8, 4, 6, 4, ThreadSource::kAffinityMask},     {8, 8, 8, 8, ThreadSource::kHardware},
        {4, 8, 0, 4, ThreadSource::kHardware},         {2048, 2048, 0, kMaxThreads, ThreadSource::kHardware},
        {0, 0, 0, 1, ThreadSource::kHardware},         {0, 0, 3, 1, ThreadSource::kHardware},
    };
    for (const Case& c : cases) {
      const ThreadCount got = thread_cap_from(c.hardware, c.affinity, c.quota);
      EXPECT(got.threads == c.threads && got.from == c.from, "thread_cap_from(%d, %d, %d) = %d (%s), expected %d (%s)", c.hardware,
             c.affinity, c.quota, got.threads, name(got.from), c.threads, name(c.from));
    }
    std::printf("ok   thread_cap_from: %zu cases (quota, mask, hardware, ties, 1024 cap)\n", sizeof cases / sizeof cases[0]);
  }

  // FASTGRU_THREADS against a cap of 2 from a quota: honoured up to it, clamped above (requested kept).
  {
    const ThreadCount cap{2, ThreadSource::kCgroupQuota};
    struct Case {
      const char* env;
      int threads;
      ThreadSource from;
      int requested;
    };
    const Case cases[] = {
        {nullptr, 2, ThreadSource::kCgroupQuota, 0},    {"1", 1, ThreadSource::kFastgruThreads, 1},
        {"2", 2, ThreadSource::kFastgruThreads, 2},     {"64", 2, ThreadSource::kCgroupQuota, 64},
        {"1024", 2, ThreadSource::kCgroupQuota, 1024},  {"1025", 2, ThreadSource::kCgroupQuota, 0},
        {"0", 2, ThreadSource::kCgroupQuota, 0},        {"-3", 2, ThreadSource::kCgroupQuota, 0},
        {"abc", 2, ThreadSource::kCgroupQuota, 0},      {"", 2, ThreadSource::kCgroupQuota, 0},
        {"2x", 2, ThreadSource::kCgroupQuota, 0},
    };
    for (const Case& c : cases) {
      const DefaultThreads got = default_threads_from(c.env, cap);
      EXPECT(got.count.threads == c.threads && got.count.from == c.from && got.requested == c.requested,
             "FASTGRU_THREADS=%s: %d (%s) requested %d, expected %d (%s) requested %d", c.env ? c.env : "(unset)",
             got.count.threads, name(got.count.from), got.requested, c.threads, name(c.from), c.requested);
    }
    std::printf("ok   default_threads_from: %zu values of FASTGRU_THREADS under a 2-CPU quota\n", sizeof cases / sizeof cases[0]);
  }

  // This machine: the cap is at least 1 and at most the hardware threads; calls clamp to it.
  {
    const ThreadCount cap = thread_cap();
    const int hardware = int(std::max(1u, std::thread::hardware_concurrency()));
    EXPECT(cap.threads >= 1 && cap.threads <= hardware, "thread_cap() = %d of %d hardware threads", cap.threads, hardware);
    EXPECT(clamp_threads(kMaxThreads) == cap.threads && clamp_threads(0) == 1 && clamp_threads(-5) == 1 && clamp_threads(1) == 1,
           "clamp_threads(1024, 0, -5, 1) = %d, %d, %d, %d with a cap of %d", clamp_threads(kMaxThreads), clamp_threads(0),
           clamp_threads(-5), clamp_threads(1), cap.threads);
    std::printf("ok   this machine: %d hardware threads, %d in the affinity mask, cgroup quota %d CPUs (0: none): cap %d (%s)\n",
                hardware, affinity_cpus(), cgroup_cpu_limit(""), cap.threads, name(cap.from));
  }
  return check::finish("cpu_limit");
}
