#include "cpu_limit.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#endif

namespace fastgru {

namespace {

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    const size_t end = s.find(sep, start);
    parts.push_back(s.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) return parts;
    start = end + 1;
  }
}

// Whitespace-separated words. No iostreams in the core: in a prebuild, with libstdc++ linked in,
// they bring its locale machinery (the addon grew from 632 KiB to 1.8 MiB) and a GLIBC_2.33 fstat.
std::vector<std::string> words(const std::string& s) {
  std::vector<std::string> out;
  size_t i = 0;
  for (;;) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' || s[i] == '\v' || s[i] == '\f')) i++;
    if (i == s.size()) return out;
    const size_t start = i;
    while (i < s.size() && !(s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' || s[i] == '\v' || s[i] == '\f')) i++;
    out.push_back(s.substr(start, i - start));
  }
}

// A whole decimal integer (an optional '-', digits, nothing else), or false.
bool parse_int(const std::string& s, int64_t* value) {
  if (s.empty() || s.size() > 20) return false;
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno != 0 || end != s.c_str() + s.size() || !(s[0] == '-' || (s[0] >= '0' && s[0] <= '9'))) return false;
  *value = v;
  return true;
}

// ceil(quota / period), at least 1 and at most kMaxThreads; 0 for no usable quota.
int cpus_for(int64_t quota, int64_t period) {
  if (quota <= 0 || period <= 0) return 0;
  const int64_t cpus = quota / period + (quota % period != 0);
  return int(std::min<int64_t>(std::max<int64_t>(cpus, 1), kMaxThreads));
}

// The file's contents, or "" when it cannot be read (a missing quota file is no limit).
std::string read_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return "";
  std::string out;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) out.append(buf, n);
  std::fclose(f);
  return out;
}

// mountinfo escapes space, tab, newline and backslash in paths as \ooo.
std::string unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' && s[i + 2] <= '7' &&
        s[i + 3] >= '0' && s[i + 3] <= '7') {
      out += char((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

// A path without its trailing slashes ("/" becomes "").
std::string trim_slashes(std::string p) {
  while (!p.empty() && p.back() == '/') p.pop_back();
  return p;
}

// The directory of cgroup `path` under mount `m`, whose own cgroup is m.root: the mount point plus
// the part of the path below m.root. A path not below it (the process moved out of a container's
// cgroup, or a path with "..": a cgroup outside the namespace) gets the mount point itself, the
// cgroup the mount shows.
std::string cgroup_dir(const CgroupMount& m, const std::string& path) {
  const std::string mount = trim_slashes(m.mount_point), root = trim_slashes(m.root), p = trim_slashes(path);
  if (path.empty() || path[0] != '/' || p.find("/..") != std::string::npos) return mount;
  if (root.empty()) return mount + p;
  if (p == root) return mount;
  if (p.compare(0, root.size() + 1, root + "/") == 0) return mount + p.substr(root.size());
  return mount;
}

// The least of `cpus(dir)` over dir and its ancestors up to the mount point (0: no limit anywhere).
template <class Cpus>
int least_up_to_mount(std::string dir, const std::string& mount_point, Cpus cpus) {
  const std::string top = trim_slashes(mount_point);
  int least = 0;
  for (int depth = 0; depth < 256; depth++) {
    const int n = cpus(dir);
    if (n > 0 && (least == 0 || n < least)) least = n;
    if (dir.size() <= top.size()) break;
    const size_t slash = dir.rfind('/');
    if (slash == std::string::npos || slash < top.size()) break;
    dir.erase(slash);
  }
  return least;
}

int least_of(int a, int b) { return a == 0 ? b : b == 0 ? a : std::min(a, b); }

}  // namespace

int cpus_from_cpu_max(const std::string& cpu_max) {
  const std::vector<std::string> w = words(cpu_max);
  int64_t quota, period;
  if (w.size() != 2 || w[0] == "max" || !parse_int(w[0], &quota) || !parse_int(w[1], &period)) return 0;
  return cpus_for(quota, period);
}

int cpus_from_cfs(const std::string& quota_us, const std::string& period_us) {
  const std::vector<std::string> q = words(quota_us), p = words(period_us);
  int64_t quota, period;
  if (q.size() != 1 || p.size() != 1 || !parse_int(q[0], &quota) || !parse_int(p[0], &period)) return 0;
  return cpus_for(quota, period);
}

std::string cgroup_v2_path(const std::string& proc_self_cgroup) {
  for (const std::string& line : split(proc_self_cgroup, '\n')) {
    if (line.compare(0, 3, "0::") == 0) return line.substr(3);
  }
  return "";
}

std::string cgroup_v1_cpu_path(const std::string& proc_self_cgroup) {
  for (const std::string& line : split(proc_self_cgroup, '\n')) {
    // "hierarchy-ID:controllers:path"; the path may itself hold colons.
    const size_t a = line.find(':');
    const size_t b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    for (const std::string& c : split(line.substr(a + 1, b - a - 1), ','))
      if (c == "cpu") return line.substr(b + 1);
  }
  return "";
}

CgroupMount find_cgroup_mount(const std::string& mountinfo, bool v2) {
  // "36 35 98:0 /root /mount/point rw,noatime [optional fields] - fstype source super,options"
  for (const std::string& line : split(mountinfo, '\n')) {
    const std::vector<std::string> f = words(line);
    const auto dash = std::find(f.begin(), f.end(), "-");
    if (f.size() < 6 || dash == f.end() || dash - f.begin() < 6 || f.end() - dash < 2) continue;
    const std::string& fstype = *(dash + 1);
    bool match = false;
    if (v2) {
      match = fstype == "cgroup2";
    } else if (fstype == "cgroup" && f.end() - dash >= 4) {
      for (const std::string& option : split(*(dash + 3), ','))
        if (option == "cpu") match = true;
    }
    if (match) return CgroupMount{unescape(f[3]), unescape(f[4])};
  }
  return CgroupMount{};
}

int cgroup_cpu_limit(const std::string& root) {
  const std::string cgroups = read_file(root + "/proc/self/cgroup");
  if (cgroups.empty()) return 0;
  const std::string mountinfo = read_file(root + "/proc/self/mountinfo");
  int least = 0;
  const std::string v2 = cgroup_v2_path(cgroups);
  if (!v2.empty()) {
    CgroupMount m = find_cgroup_mount(mountinfo, true);
    // Without a mountinfo (it is there whenever /proc/self/cgroup is), the usual place.
    if (m.mount_point.empty() && mountinfo.empty()) m = CgroupMount{"/", "/sys/fs/cgroup"};
    if (!m.mount_point.empty()) {
      const std::string mount = root + m.mount_point;
      least = least_of(least, least_up_to_mount(cgroup_dir(CgroupMount{m.root, mount}, v2), mount, [](const std::string& dir) {
        return cpus_from_cpu_max(read_file(dir + "/cpu.max"));
      }));
    }
  }
  const std::string v1 = cgroup_v1_cpu_path(cgroups);
  if (!v1.empty()) {
    std::vector<CgroupMount> mounts{find_cgroup_mount(mountinfo, false)};
    if (mounts[0].mount_point.empty() && mountinfo.empty())
      mounts = {CgroupMount{"/", "/sys/fs/cgroup/cpu,cpuacct"}, CgroupMount{"/", "/sys/fs/cgroup/cpu"}};
    for (const CgroupMount& m : mounts) {
      if (m.mount_point.empty()) continue;
      const std::string mount = root + m.mount_point;
      least = least_of(least, least_up_to_mount(cgroup_dir(CgroupMount{m.root, mount}, v1), mount, [](const std::string& dir) {
        return cpus_from_cfs(read_file(dir + "/cpu.cfs_quota_us"), read_file(dir + "/cpu.cfs_period_us"));
      }));
    }
  }
  return least;
}

int affinity_cpus() {
#if defined(__linux__)
  // A fixed cpu_set_t holds 1024 CPUs and the call fails (EINVAL) on machines with more: grow it.
  for (int n = 1024; n <= (1 << 16); n *= 2) {
    cpu_set_t* set = CPU_ALLOC(n);
    if (!set) return 0;
    const size_t size = CPU_ALLOC_SIZE(n);
    const int rc = sched_getaffinity(0, size, set);
    const int count = rc == 0 ? CPU_COUNT_S(size, set) : 0;
    const int error = errno;
    CPU_FREE(set);
    if (rc == 0) return count;
    if (error != EINVAL) return 0;
  }
#endif
  return 0;
}

const char* thread_source_name(ThreadSource source) {
  switch (source) {
    case ThreadSource::kFastgruThreads: return "FASTGRU_THREADS";
    case ThreadSource::kCgroupQuota: return "cgroup quota";
    case ThreadSource::kAffinityMask: return "affinity mask";
    case ThreadSource::kHardware: return "hardware";
  }
  return "hardware";
}

ThreadCount thread_cap_from(int hardware, int affinity, int quota) {
  ThreadCount cap{std::max(1, hardware), ThreadSource::kHardware};
  if (affinity > 0 && affinity < cap.threads) cap = {affinity, ThreadSource::kAffinityMask};
  if (quota > 0 && quota < cap.threads) cap = {quota, ThreadSource::kCgroupQuota};
  cap.threads = std::min(cap.threads, kMaxThreads);
  return cap;
}

DefaultThreads default_threads_from(const char* env, const ThreadCount& cap) {
  int64_t n = 0;
  if (env && parse_int(env, &n) && n >= 1 && n <= kMaxThreads) {
    if (n <= cap.threads) return {{int(n), ThreadSource::kFastgruThreads}, int(n)};
    return {cap, int(n)};
  }
  return {cap, 0};
}

}  // namespace fastgru
