// Linked into the Linux prebuilds only (scripts/prebuild.mjs, CMakeLists.txt's FASTGRU_PREBUILD):
// what lets one binary, built on a new glibc with libstdc++ and libgcc linked statically, load on
// glibc 2.28 (Debian 10, Ubuntu 20.04, RHEL 8), the oldest that Node 20 itself supports.
//
// A static libstdc++/libgcc built against glibc 2.36 asks for symbols that older glibc lacks:
//   - pthread_create and eight more at GLIBC_2.34 (libpthread merged into libc). glibc keeps the
//     old versions, so the link wraps each (-Wl,--wrap=NAME) and the wrapper calls the old one,
//     pinned with .symver to the architecture's base version;
//   - __libc_single_threaded (GLIBC_2.32), read by libstdc++'s inline code: our own definition,
//     always 0, makes it take the atomic path every time, which is always correct;
//   - _dl_find_object (GLIBC_2.35), which libgcc's unwinder calls to find a frame's unwind table:
//     our own, on dl_iterate_phdr (base version), which is what the unwinder used before 2.35;
//   - arc4random (GLIBC_2.36), referenced by std::random_device's object file: our own, on
//     getrandom (GLIBC_2.25).
// The base version is GLIBC_2.2.5 on x86-64 and GLIBC_2.17 on AArch64 (the first glibc for it).
// AArch64 (Debian's g++-aarch64-linux-gnu, glibc 2.36) needs nothing more than the four above, in
// the same CMake link line; what it brings that x86-64 does not is already old enough:
//   - the outline atomics (-moutline-atomics, GCC's default for armv8-a: every std::atomic
//     read-modify-write calls __aarch64_cas4_acq_rel, __aarch64_ldadd8_relax and the like, which
//     pick LSE or LL/SC at run time) come from libgcc.a, linked statically and local like the
//     rest of libgcc; their constructor reads AT_HWCAP with __getauxval (GLIBC_2.17);
//   - thread_local in the static libstdc++ (exception globals) uses TLS descriptors
//     (R_AARCH64_TLSDESC), which ld.so resolves without any versioned symbol.
// The AArch64 prebuild asks for GLIBC_2.17 and GLIBC_2.25 (getrandom, getentropy) only;
// .ci/arm-addon.sh checks that and runs it in Node's own arm64 binary under qemu-user.
// Every definition here is hidden, so none leaves the addon. `objdump -T` is the judge: the
// release command (scripts/prebuild.mjs) refuses a prebuild that asks for any GLIBC version above
// 2.28 or for any GLIBCXX or CXXABI version.
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/random.h>

#if !defined(__linux__) || !defined(__GLIBC__)
#error "glibc_compat.cpp is for the glibc Linux prebuilds only"
#endif

#if defined(__x86_64__)
#define FASTGRU_GLIBC_BASE "GLIBC_2.2.5"
#elif defined(__aarch64__)
#define FASTGRU_GLIBC_BASE "GLIBC_2.17"
#else
#error "glibc_compat.cpp: no base glibc version known for this architecture"
#endif

#define FASTGRU_HIDDEN __attribute__((visibility("hidden")))

// Each old_NAME is bound to NAME@<base version>; each __wrap_NAME is what every object of the link
// (ours and libstdc++'s) calls instead of NAME.
#define FASTGRU_PIN(name) __asm__(".symver fastgru_old_" #name ", " #name "@" FASTGRU_GLIBC_BASE)

extern "C" {

FASTGRU_PIN(pthread_create);
FASTGRU_PIN(pthread_join);
FASTGRU_PIN(pthread_detach);
FASTGRU_PIN(pthread_once);
FASTGRU_PIN(pthread_key_create);
FASTGRU_PIN(__pthread_key_create);
FASTGRU_PIN(pthread_key_delete);
FASTGRU_PIN(pthread_getspecific);
FASTGRU_PIN(pthread_setspecific);

int fastgru_old_pthread_create(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*);
int fastgru_old_pthread_join(pthread_t, void**);
int fastgru_old_pthread_detach(pthread_t);
int fastgru_old_pthread_once(pthread_once_t*, void (*)(void));
int fastgru_old_pthread_key_create(pthread_key_t*, void (*)(void*));
int fastgru_old___pthread_key_create(pthread_key_t*, void (*)(void*));
int fastgru_old_pthread_key_delete(pthread_key_t);
void* fastgru_old_pthread_getspecific(pthread_key_t);
int fastgru_old_pthread_setspecific(pthread_key_t, const void*);

FASTGRU_HIDDEN int __wrap_pthread_create(pthread_t* t, const pthread_attr_t* a, void* (*f)(void*), void* arg) {
  return fastgru_old_pthread_create(t, a, f, arg);
}
FASTGRU_HIDDEN int __wrap_pthread_join(pthread_t t, void** r) { return fastgru_old_pthread_join(t, r); }
FASTGRU_HIDDEN int __wrap_pthread_detach(pthread_t t) { return fastgru_old_pthread_detach(t); }
FASTGRU_HIDDEN int __wrap_pthread_once(pthread_once_t* o, void (*f)(void)) { return fastgru_old_pthread_once(o, f); }
FASTGRU_HIDDEN int __wrap_pthread_key_create(pthread_key_t* k, void (*d)(void*)) {
  return fastgru_old_pthread_key_create(k, d);
}
FASTGRU_HIDDEN int __wrap___pthread_key_create(pthread_key_t* k, void (*d)(void*)) {
  return fastgru_old___pthread_key_create(k, d);
}
FASTGRU_HIDDEN int __wrap_pthread_key_delete(pthread_key_t k) { return fastgru_old_pthread_key_delete(k); }
FASTGRU_HIDDEN void* __wrap_pthread_getspecific(pthread_key_t k) { return fastgru_old_pthread_getspecific(k); }
FASTGRU_HIDDEN int __wrap_pthread_setspecific(pthread_key_t k, const void* v) {
  return fastgru_old_pthread_setspecific(k, v);
}

// 0: "other threads may exist", so libstdc++ never skips an atomic operation.
FASTGRU_HIDDEN char __libc_single_threaded = 0;

FASTGRU_HIDDEN uint32_t arc4random(void) {
  uint32_t v = 0;
  size_t got = 0;
  while (got < sizeof v) {
    ssize_t n = getrandom(reinterpret_cast<char*>(&v) + got, sizeof v - got, 0);
    if (n > 0) got += static_cast<size_t>(n);
    else if (n < 0 && errno != EINTR) break;  // no entropy source: what was read so far
  }
  return v;
}

// glibc 2.35's struct dl_find_object, as libgcc reads it (the header of 2.36 declares it).
struct FindState {
  uintptr_t pc;
  struct dl_find_object* out;
  bool found;
};

static int find_object(struct dl_phdr_info* info, size_t, void* data) {
  FindState* s = static_cast<FindState*>(data);
  const ElfW(Phdr)* eh_frame = nullptr;
  bool contains = false;
  uintptr_t lo = UINTPTR_MAX, hi = 0;
  for (ElfW(Half) i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& p = info->dlpi_phdr[i];
    if (p.p_type == PT_LOAD) {
      uintptr_t begin = info->dlpi_addr + p.p_vaddr, end = begin + p.p_memsz;
      if (begin < lo) lo = begin;
      if (end > hi) hi = end;
      if (s->pc >= begin && s->pc < end) contains = true;
    } else if (p.p_type == PT_GNU_EH_FRAME) {
      eh_frame = &p;
    }
  }
  if (!contains) return 0;
  s->found = true;
  s->out->dlfo_flags = 0;
  s->out->dlfo_map_start = reinterpret_cast<void*>(lo);
  s->out->dlfo_map_end = reinterpret_cast<void*>(hi);
  s->out->dlfo_link_map = nullptr;
  s->out->dlfo_eh_frame = eh_frame ? reinterpret_cast<void*>(info->dlpi_addr + eh_frame->p_vaddr) : nullptr;
  return 1;
}

FASTGRU_HIDDEN int _dl_find_object(void* pc, struct dl_find_object* result) {
  FindState s{reinterpret_cast<uintptr_t>(pc), result, false};
  dl_iterate_phdr(find_object, &s);
  return s.found && result->dlfo_eh_frame ? 0 : -1;
}

}  // extern "C"
