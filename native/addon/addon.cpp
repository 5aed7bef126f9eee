// fastgru's N-API layer: converts and checks arguments, pins what async work reads, queues work,
// and turns every C++ exception into a JS error with a stable code. It knows nothing of GEMM; the
// core computes. Context-aware: all state lives in one per-environment AddonData.
//
// The rules of the boundary (design §5), which every function here keeps. A getter on an argument,
// a setter on Object.prototype or another thread writing a SharedArrayBuffer must never make the
// core touch memory it was not given:
//  1. The addon copies what it checks. Every JS array's length is read once. The small inputs that
//     steer indexing (sizes, `lengths`, the list of dropout masks) are copied into native memory,
//     then validated, and only the copy is used. The large float inputs (x, h0, the masks' and the
//     weights' contents, upstream gradients) are read in place: another thread changing them
//     changes numbers, never which memory is touched. (forwardAsync copies x and h0 all the same,
//     so that the caller may move its buffers away while the work runs, unless they lie in a batch
//     buffer of rule 5, which it holds instead.)
//  2. No JavaScript that user code can replace runs between taking a data pointer and using it.
//     Argument getters run first; pointers are taken, and checked again, after the last JS call.
//     The JS the addon calls itself is fixed once: makeError and allocate from the one init(), its
//     own class constructors and the keep stamp (3). Objects it hands back get own data properties
//     (define), so no setter on Object.prototype or Array.prototype sees a buffer in the making.
//  3. What the addon allocates lives exactly as long as its owner, tied without user-reachable JS:
//     a private class field added by a function compiled here at load, from source that reads no
//     global or prototype property (a WeakMap's set, looked up at call time, could be replaced and
//     hand the memory to user code to detach). Not a Napi reference: that would be released by a
//     finalizer, which Node runs only once the event loop turns (a synchronous training loop would
//     keep every step's memory).
//  4. init() runs once per environment (thread): a second call is refused, so the allocator cannot
//     change under live models. The allocator must return fresh arrays nobody else holds (fastgru's
//     does). fastgru loads the addon once per thread however it is loaded: require('fastgru') and
//     import('fastgru') are one module.
//  5. Batch buffers (batchBuffer(n)) are the one native memory JS may hold: a Float32Array over a
//     block the addon allocated, owned by a reference count that the array's finalizer and every
//     forwardAsync reading it share. forwardAsync recognises x or h0 in such a block by its address
//     (a process-wide registry of live blocks, looked up under a lock, the whole byte range checked
//     to lie in the block) and takes a reference instead of copying; any other array is copied. So
//     whatever JS does to the array meanwhile (detach, drop, let the GC collect it) the block lives
//     until the work releases it, and writes to it change numbers only (as in rule 1). An address
//     can match only a live block the addon made: a block leaves the registry before it is freed.
//     Their memory is reported to V8, and freed only once their finalizer ran and the work is done:
//     for the batcher's reused buffers, not for a synchronous loop's per-call memory (rule 3). Where
//     Node refuses external buffers, batchBuffer returns a plain Float32Array (copied as any other).
#include <napi.h>

#include <cmath>
#include <cstdio>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "../core/cpu.h"
#include "../core/fma_peak.h"
#include "../core/gemm.h"
#include "../core/gru.h"
#include "../core/model_cache.h"
#include "../core/thread_pool.h"

namespace {

using fastgru::Error;

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

// The per-environment state (one per main thread or worker): node-addon-api keeps the instance.
class Addon;
Addon* addon_of(Napi::Env env);
Napi::FunctionReference& make_error_ref(Napi::Env env);
Napi::FunctionReference& tape_ctor_ref(Napi::Env env);
Napi::FunctionReference& allocate_ref(Napi::Env env);
Napi::FunctionReference& keep_ref(Napi::Env env);
bool& initialized_ref(Napi::Env env);

// Type tags: napi_unwrap trusts its caller, so every object is checked to be what it claims
// (a Model's prototype can be set to Tape's, a getter can be called on the other class).
const napi_type_tag kModelTag = {0x66617374677275ULL, 0x4d6f64656cULL};
const napi_type_tag kTapeTag = {0x66617374677275ULL, 0x54617065ULL};
bool has_tag(const Napi::Value& v, const napi_type_tag& tag) {
  return v.IsObject() && v.As<Napi::Object>().CheckTypeTag(&tag);
}

Napi::Error make_js_error(Napi::Env env, const std::string& code, const std::string& message) {
  Napi::FunctionReference& make_error = make_error_ref(env);
  if (!make_error.IsEmpty()) {
    Napi::Value e = make_error.Call({Napi::String::New(env, code), Napi::String::New(env, message)});
    if (e.IsObject()) return Napi::Error(env, e);
  }
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, code));
  return e;
}

// Runs a callback body, converting every C++ exception into a JS exception: nothing escapes into
// Node. Napi::Error (already a JS error) passes through.
template <class F>
Napi::Value guarded(Napi::Env env, F body) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (const Error& e) {
    throw make_js_error(env, e.code(), e.what());
  } catch (const std::bad_alloc&) {
    throw make_js_error(env, "ERR_OUT_OF_MEMORY", "fastgru: out of memory");
  } catch (const std::exception& e) {
    throw make_js_error(env, "ERR_INTERNAL", std::string("fastgru: internal error: ") + e.what());
  }
}

// ---------------------------------------------------------------------------------------------
// Argument conversion: each helper names the argument in its error.
// ---------------------------------------------------------------------------------------------

// As JavaScript prints a number: 1.5, -3, NaN, Infinity.
std::string format_number(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  char buf[32];
  for (int precision = 1; precision <= 17; precision++) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, d);
    if (std::strtod(buf, nullptr) == d) break;
  }
  return buf;
}

std::string elements(size_t n) { return std::to_string(n) + (n == 1 ? " element" : " elements"); }

std::string describe(const Napi::Value& v) {
  if (v.IsUndefined()) return "undefined";
  if (v.IsNull()) return "null";
  if (v.IsBoolean()) return v.As<Napi::Boolean>().Value() ? "true" : "false";
  if (v.IsNumber()) return format_number(v.As<Napi::Number>().DoubleValue());
  if (v.IsString()) return "a string";
  if (v.IsTypedArray()) {
    switch (v.As<Napi::TypedArray>().TypedArrayType()) {
      case napi_int8_array: return "an Int8Array";
      case napi_uint8_array: return "a Uint8Array";
      case napi_uint8_clamped_array: return "a Uint8ClampedArray";
      case napi_int16_array: return "an Int16Array";
      case napi_uint16_array: return "a Uint16Array";
      case napi_int32_array: return "an Int32Array";
      case napi_uint32_array: return "a Uint32Array";
      case napi_float32_array: return "a Float32Array";
      case napi_float64_array: return "a Float64Array";
      case napi_bigint64_array: return "a BigInt64Array";
      case napi_biguint64_array: return "a BigUint64Array";
      default: return "a typed array";
    }
  }
  if (v.IsArray()) return "an array";
  if (v.IsFunction()) return "a function";
  if (v.IsObject()) return "an object";
  return "a value of another type";
}

[[noreturn]] void fail(const char* code, const std::string& arg, const std::string& expected, const std::string& got) {
  throw Error(code, arg + ": expected " + expected + ", got " + got);
}

int64_t to_int(const Napi::Value& v, const std::string& arg, int64_t lo, int64_t hi) {
  if (!v.IsNumber()) fail("ERR_ARGUMENT", arg, "an integer", describe(v));
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= double(lo) && d <= double(hi)) || d != double(int64_t(d)))
    fail("ERR_ARGUMENT", arg, "an integer in " + std::to_string(lo) + ".." + std::to_string(hi), describe(v));
  return int64_t(d);
}

bool to_bool(const Napi::Value& v, const std::string& arg) {
  if (!v.IsBoolean()) fail("ERR_ARGUMENT", arg, "a boolean", describe(v));
  return v.As<Napi::Boolean>().Value();
}

template <class T>
struct ArrayArg {
  T* data = nullptr;
  size_t length = 0;
};

// A typed array of the given type and, unless expected < 0, exactly `expected` elements.
// A detached buffer is an error, never a null pointer handed to the core.
template <class T>
ArrayArg<T> to_array(const Napi::Value& v, napi_typedarray_type type, const char* type_name, const std::string& arg,
                     int64_t expected) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type)
    fail(v.IsTypedArray() ? "ERR_DTYPE" : "ERR_ARGUMENT", arg, type_name, describe(v));
  // The raw call: it reports the data of arrays over a SharedArrayBuffer too (shared weights), where
  // node-addon-api's ArrayBuffer() accessors accept plain ArrayBuffers only.
  napi_env env = v.Env();
  napi_typedarray_type actual;
  size_t n = 0, offset = 0;
  void* data = nullptr;
  napi_value buffer;
  if (napi_get_typedarray_info(env, v, &actual, &n, &data, &buffer, &offset) != napi_ok)
    fail("ERR_ARGUMENT", arg, type_name, describe(v));
  bool is_plain = false, detached = false;
  if (napi_is_arraybuffer(env, buffer, &is_plain) == napi_ok && is_plain &&
      napi_is_detached_arraybuffer(env, buffer, &detached) == napi_ok && detached)
    fail("ERR_ARGUMENT", arg, type_name, "a detached buffer");
  if (expected >= 0 && int64_t(n) != expected) fail("ERR_SHAPE", arg, elements(size_t(expected)), elements(n));
  ArrayArg<T> out;
  out.length = n;
  out.data = n ? static_cast<T*>(data) : nullptr;
  return out;
}

ArrayArg<float> to_floats(const Napi::Value& v, const std::string& arg, int64_t expected) {
  return to_array<float>(v, napi_float32_array, "a Float32Array", arg, expected);
}

ArrayArg<float> to_floats_or_null(const Napi::Value& v, const std::string& arg, int64_t expected) {
  if (v.IsNull() || v.IsUndefined()) return {};
  return to_floats(v, arg, expected);
}

// Every buffer a call hands back, and the memory of packed weights and tapes, is a Float32Array
// made by the allocator init() was given ((n) => new Float32Array(n), whose failure is an
// OutOfMemoryError): memory the garbage collector frees together with what uses it. Native memory
// would be freed by finalizers, which Node runs only once the event loop turns: a synchronous
// training loop would grow without bound.
Napi::Float32Array new_floats(Napi::Env env, int64_t n) {
  if (n < 0 || uint64_t(n) > (uint64_t(1) << 34))
    throw Error("ERR_OUT_OF_MEMORY", "fastgru: out of memory: a buffer of " + std::to_string(n) + " floats");
  Napi::FunctionReference& allocate = allocate_ref(env);
  Napi::Float32Array floats;
  if (allocate.IsEmpty()) {
    floats = Napi::Float32Array::New(env, size_t(n));
  } else {
    Napi::Value v = allocate.Call({Napi::Number::New(env, double(n))});
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array ||
        v.As<Napi::TypedArray>().ElementLength() != size_t(n))
      fail("ERR_ARGUMENT", "allocate", "a function returning a Float32Array of the length asked", describe(v));
    floats = v.As<Napi::Float32Array>();
  }
  // Fresh memory, first touched inside the time loop: huge pages make that a fault per 2 MB.
  fastgru::advise_huge_pages(floats.Data(), n);
  return floats;
}

// The keep stamp (rule 3), compiled once per environment: `new Keep(owner, a, b)` adds the private
// field #kept = [a, b] to owner (the base constructor returns owner as `this`). Nothing in it looks
// up a global or a property user code can replace, and no reflection reaches a private field.
const char kKeepSource[] = R"js((() => {
  'use strict';
  class Owner { constructor(owner) { return owner; } }
  class Keep extends Owner {
    #kept;
    constructor(owner, a, b) { super(owner); this.#kept = [a, b]; }
  }
  return function keep(owner, a, b) { new Keep(owner, a, b); };
})())js";

// Ties `memory` (and `also`) to `owner`: they live exactly as long as owner does, out of the
// callers' reach, so they cannot detach it while native code points into it.
void keep_alive(Napi::Env env, const Napi::Object& owner, const Napi::Value& memory, Napi::Value also = Napi::Value()) {
  if (keep_ref(env).IsEmpty()) throw Error("ERR_INTERNAL", "fastgru: internal error: the addon did not finish loading");
  keep_ref(env).Call({owner, memory, also.IsEmpty() ? env.Null() : also});
}

// obj[key] = value as an own data property (rule 2): unlike a plain set, it runs no setter that
// user code put on Object.prototype or Array.prototype (for an index, key is its string).
void define(Napi::Object obj, const std::string& key, const Napi::Value& value) {
  const auto attributes = static_cast<napi_property_attributes>(napi_writable | napi_enumerable | napi_configurable);
  obj.DefineProperty(Napi::PropertyDescriptor::Value(Napi::String::New(obj.Env(), key), value, attributes));
}

float* data_of(Napi::Float32Array a) { return a.ElementLength() ? to_floats(a, "buffer", -1).data : nullptr; }

// ---------------------------------------------------------------------------------------------
// Batch buffers (rule 5)
// ---------------------------------------------------------------------------------------------

// A block of native floats that JS sees through one external ArrayBuffer. It is in the registry
// from its making until its destructor, which takes it out before freeing the memory: an address
// found in the registry is memory of a block that has not been freed.
class BatchBlock {
 public:
  static std::shared_ptr<BatchBlock> make(size_t floats);
  ~BatchBlock();
  BatchBlock(const BatchBlock&) = delete;
  BatchBlock& operator=(const BatchBlock&) = delete;
  float* data() const { return data_; }
  size_t bytes() const { return bytes_; }

 private:
  BatchBlock(float* data, size_t bytes) : data_(data), bytes_(bytes) {}
  float* data_;
  size_t bytes_;
};

constexpr std::align_val_t kBatchAlign{64};

// Process-wide (a block made on one thread may be read by a forwardAsync of another thread's addon
// instance), and never destroyed: a finalizer may release a block while the process exits.
struct BatchRegistry {
  std::mutex mutex;
  std::map<uintptr_t, std::weak_ptr<BatchBlock>> by_start;
  size_t live = 0;
  size_t live_bytes = 0;
  size_t js_held = 0;  // blocks whose JS array's finalizer has not run yet
};
BatchRegistry& batch_registry() {
  static BatchRegistry* registry = new BatchRegistry;
  return *registry;
}

std::shared_ptr<BatchBlock> BatchBlock::make(size_t floats) {
  const size_t bytes = floats * sizeof(float);
  float* data = static_cast<float*>(::operator new(bytes, kBatchAlign));
  std::memset(data, 0, bytes);
  std::shared_ptr<BatchBlock> block;
  try {
    block.reset(new BatchBlock(data, bytes));
  } catch (...) {
    ::operator delete(data, kBatchAlign);
    throw;
  }
  BatchRegistry& r = batch_registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.by_start[reinterpret_cast<uintptr_t>(data)] = block;  // (the destructor takes it out)
  r.live++;
  r.live_bytes += bytes;
  return block;
}

BatchBlock::~BatchBlock() {
  {
    BatchRegistry& r = batch_registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    r.by_start.erase(reinterpret_cast<uintptr_t>(data_));
    r.live--;
    r.live_bytes -= bytes_;
  }
  ::operator delete(data_, kBatchAlign);
}

// The live block that holds all of [p, p + bytes), with a reference taken under the lock; null for
// memory of any other kind (a JS array, a block already released by its last owner).
std::shared_ptr<BatchBlock> find_batch_block(const void* p, size_t bytes) {
  if (!p || !bytes) return nullptr;
  const uintptr_t at = reinterpret_cast<uintptr_t>(p);
  BatchRegistry& r = batch_registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  auto it = r.by_start.upper_bound(at);
  if (it == r.by_start.begin()) return nullptr;
  --it;
  std::shared_ptr<BatchBlock> block = it->second.lock();
  if (!block) return nullptr;
  const uintptr_t offset = at - it->first;
  if (offset > block->bytes() || bytes > block->bytes() - offset) return nullptr;
  return block;
}

// batchBuffer(floats): a zeroed Float32Array over a new batch block (rule 5), or a plain one where
// Node allows no external buffers (and for 0 floats).
Napi::Value JsBatchBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const int64_t floats = to_int(info[0], "floats", 0, int64_t(1) << 32);
    if (floats == 0) return Napi::Float32Array::New(env, 0);
    std::shared_ptr<BatchBlock> block = BatchBlock::make(size_t(floats));
    const size_t bytes = block->bytes();
    auto* held = new std::shared_ptr<BatchBlock>(block);  // the JS array's reference, for the finalizer
    napi_value buffer = nullptr;
    const napi_status status = napi_create_external_arraybuffer(
        env, block->data(), bytes,
        [](napi_env finalize_env, void*, void* hint) {
          auto* h = static_cast<std::shared_ptr<BatchBlock>*>(hint);
          {
            BatchRegistry& r = batch_registry();
            std::lock_guard<std::mutex> lock(r.mutex);
            r.js_held--;
          }
          int64_t change = -int64_t((*h)->bytes());
          int64_t ignored;
          napi_adjust_external_memory(finalize_env, change, &ignored);
          delete h;
        },
        held, &buffer);
    if (status != napi_ok) {
      delete held;  // no finalizer will run: the block goes when `block` does
      // External buffers refused (a runtime built without them): a plain array, which forwardAsync
      // copies like any other.
      if (status == napi_no_external_buffers_allowed) return new_floats(env, floats);
      throw Napi::Error::New(env);  // the pending exception, or one describing the failed call
    }
    {
      BatchRegistry& r = batch_registry();
      std::lock_guard<std::mutex> lock(r.mutex);
      r.js_held++;
    }
    Napi::MemoryManagement::AdjustExternalMemory(env, int64_t(bytes));
    return Napi::Float32Array::New(env, size_t(floats), Napi::ArrayBuffer(env, buffer), 0);
  });
}

// batchBufferStats(): diagnostic, for the tests: the live blocks of the process, their bytes, and
// how many of them a JS array still holds (their finalizer has not run).
Napi::Value JsBatchBufferStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t live, bytes, js_held;
  {
    BatchRegistry& r = batch_registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    live = r.live;
    bytes = r.live_bytes;
    js_held = r.js_held;
  }
  Napi::Object o = Napi::Object::New(env);
  define(o, "live", Napi::Number::New(env, double(live)));
  define(o, "bytes", Napi::Number::New(env, double(bytes)));
  define(o, "jsHeld", Napi::Number::New(env, double(js_held)));
  return o;
}

// ---------------------------------------------------------------------------------------------
// Model
// ---------------------------------------------------------------------------------------------

struct Call {
  fastgru::SequenceBatch batch;
  fastgru::CallSizes sizes{};
  int threads = 1;
  // The native copy of `lengths` that batch.lengths points at (rule 1), shared by copies of the Call.
  std::shared_ptr<const std::vector<int32_t>> lengths;
};

class TapeWrap;

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
  // The methods are plain functions on the prototype that check `this` carries the Model tag
  // before unwrapping: node-addon-api's InstanceMethod would call the member function on whatever
  // object napi_unwrap returns (a Tape, with a method borrowed onto it), which is undefined behaviour.
  static Napi::Function Define(Napi::Env env) {
    Napi::Function cls = DefineClass(env, "Model", {});
    Napi::Object proto = cls.Get("prototype").As<Napi::Object>();
    proto.DefineProperties({
        Napi::PropertyDescriptor::Function(env, proto, "forward", &Checked<&ModelWrap::Forward>),
        Napi::PropertyDescriptor::Function(env, proto, "forwardAsync", &Checked<&ModelWrap::ForwardAsync>),
        Napi::PropertyDescriptor::Function(env, proto, "forwardTrain", &Checked<&ModelWrap::ForwardTrain>),
        Napi::PropertyDescriptor::Function(env, proto, "backward", &Checked<&ModelWrap::Backward>),
        Napi::PropertyDescriptor::Accessor<&Checked<&ModelWrap::Isa>>("isa"),
        Napi::PropertyDescriptor::Accessor<&Checked<&ModelWrap::WorkBytes>>("workBytes"),
        Napi::PropertyDescriptor::Accessor<&Checked<&ModelWrap::CopiedBytes>>("copiedBytes"),
    });
    return cls;
  }
  template <Napi::Value (ModelWrap::*M)(const Napi::CallbackInfo&)>
  static Napi::Value Checked(const Napi::CallbackInfo& info) {
    if (!has_tag(info.This(), kModelTag)) throw make_js_error(info.Env(), "ERR_ARGUMENT", "this: expected a fastgru Model");
    return (Unwrap(info.This().As<Napi::Object>())->*M)(info);
  }

  ModelWrap(const Napi::CallbackInfo& info);
  ~ModelWrap() override {
    if (model_ && native_bytes_) Napi::MemoryManagement::AdjustExternalMemory(env_, -native_bytes_);
  }

  std::shared_ptr<const fastgru::Model> model() const { return model_; }

 private:
  Napi::Value Forward(const Napi::CallbackInfo& info);
  Napi::Value ForwardAsync(const Napi::CallbackInfo& info);
  Napi::Value ForwardTrain(const Napi::CallbackInfo& info);
  Napi::Value Backward(const Napi::CallbackInfo& info);
  Napi::Value Isa(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), model_->kernels().name); }
  // Diagnostic, for the tests of native working memory: the bytes the latest call reserved.
  Napi::Value WorkBytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), double(model_->last_work_bytes()));
  }

  // Diagnostic, for the tests of batch buffers (rule 5): the bytes of x and h0 the latest
  // forwardAsync on this model copied into native memory.
  Napi::Value CopiedBytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), double(last_copied_bytes_));
  }

  // Reads (x, steps, batch, batchFirst, h0, lengths, ..., threads) from info[0..5] and info[threads_at].
  Call read_call(const Napi::CallbackInfo& info, size_t threads_at) const;
  // Checks x and h0 against the call's sizes and takes their pointers (again after anything that
  // runs JS: a buffer may have been detached meanwhile).
  static void take_inputs(const Napi::CallbackInfo& info, Call& call);

  napi_env env_;
  std::shared_ptr<const fastgru::Model> model_;
  int64_t native_bytes_ = 0;  // packed weights in native memory (shared models), reported to V8
  size_t last_copied_bytes_ = 0;  // what the latest forwardAsync copied (CopiedBytes)
};

Call ModelWrap::read_call(const Napi::CallbackInfo& info, size_t threads_at) const {
  const fastgru::GruConfig& c = model_->config();
  Call call;
  fastgru::SequenceBatch& b = call.batch;
  b.steps = to_int(info[1], "steps", 0, int64_t(1) << 40);
  b.batch = to_int(info[2], "batch", 0, int64_t(1) << 40);
  b.batch_first = to_bool(info[3], "batchFirst");
  const Napi::Value lv = info[5];
  if (!lv.IsNull() && !lv.IsUndefined()) {
    // Copied, then checked (by check_batch), and only the copy used (rule 1): another thread may be
    // writing a SharedArrayBuffer under the array, and the schedule reads each length several times.
    // An aligned int32 is read whole: any value copied is one some thread wrote, and it is checked.
    const ArrayArg<int32_t> l = to_array<int32_t>(lv, napi_int32_array, "an Int32Array", "lengths", b.batch);
    auto copy = std::make_shared<std::vector<int32_t>>(l.length);
    if (l.length) std::memcpy(copy->data(), l.data, l.length * sizeof(int32_t));
    b.lengths = copy->data();
    call.lengths = std::move(copy);
  }
  // Sizes (and lengths) are checked before any buffer length is compared against a product.
  call.sizes = fastgru::check_batch(c, b);
  take_inputs(info, call);
  call.threads = int(to_int(info[threads_at], "threads", 1, 1024));
  return call;
}

void ModelWrap::take_inputs(const Napi::CallbackInfo& info, Call& call) {
  call.batch.x = to_floats(info[0], "x", call.sizes.x).data;
  call.batch.h0 = to_floats_or_null(info[4], "h0", call.sizes.h).data;
}

ModelWrap::ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelWrap>(info), env_(info.Env()) {
  Napi::Env env = info.Env();
  info.This().As<Napi::Object>().TypeTag(&kModelTag);
  guarded(env, [&]() -> Napi::Value {
    if (!info[0].IsObject()) fail("ERR_ARGUMENT", "config", "an object", describe(info[0]));
    Napi::Object o = info[0].As<Napi::Object>();
    fastgru::GruConfig c;
    c.input_size = int(to_int(o.Get("inputSize"), "config.inputSize", 1, 1 << 30));
    c.hidden_size = int(to_int(o.Get("hiddenSize"), "config.hiddenSize", 1, 1 << 30));
    c.num_layers = int(to_int(o.Get("numLayers"), "config.numLayers", 1, 1 << 20));
    c.num_directions = int(to_int(o.Get("numDirections"), "config.numDirections", 1, 2));
    c.reset_after = to_bool(o.Get("resetAfter"), "config.resetAfter");
    c.bias = to_bool(o.Get("bias"), "config.bias");
    fastgru::check_config(c);
    if (!info[1].IsArray()) fail("ERR_ARGUMENT", "weights", "an array", describe(info[1]));
    Napi::Array list = info[1].As<Napi::Array>();
    const int64_t count = int64_t(c.num_layers) * c.num_directions;
    const uint32_t listed = list.Length();  // read once (rule 1); the loop below goes to count
    if (int64_t(listed) != count)
      fail("ERR_SHAPE", "weights", std::to_string(count) + " layer-directions", std::to_string(listed));
    const int64_t H = c.hidden_size;
    // First every JS read (getters may run and detach buffers), then the pointers: no JS runs
    // between taking a pointer and packing.
    std::vector<Napi::Value> values;
    for (int64_t k = 0; k < count; k++) {
      const std::string arg = "weights[" + std::to_string(k) + "]";
      Napi::Value item = list.Get(uint32_t(k));
      if (!item.IsObject()) fail("ERR_ARGUMENT", arg, "an object { wIh, wHh, bIh, bHh }", describe(item));
      Napi::Object w = item.As<Napi::Object>();
      for (const char* key : {"wIh", "wHh", "bIh", "bHh"}) values.push_back(w.Get(key));
    }
    std::vector<fastgru::DirectionWeights> weights(static_cast<size_t>(count));
    // Checks the weights and takes their pointers (again after anything that runs JS).
    auto take_pointers = [&] {
      for (int64_t k = 0; k < count; k++) {
        const std::string arg = "weights[" + std::to_string(k) + "]";
        const int64_t I = k < c.num_directions ? c.input_size : int64_t(c.num_directions) * H;
        weights[k].w_ih = to_floats(values[4 * k], arg + ".wIh", 3 * H * I).data;
        weights[k].w_hh = to_floats(values[4 * k + 1], arg + ".wHh", 3 * H * H).data;
        if (c.bias) {
          weights[k].b_ih = to_floats(values[4 * k + 2], arg + ".bIh", 3 * H).data;
          weights[k].b_hh = to_floats(values[4 * k + 3], arg + ".bHh", 3 * H).data;
        }
      }
    };
    take_pointers();
    const bool shared = !info[2].IsUndefined() && to_bool(info[2], "shared");
    const fastgru::KernelTable& kt = fastgru::active_kernels();
    if (shared) {
      // One packed copy per process, in native memory, for every model built from these weights.
      model_ = fastgru::shared_model(c, weights, kt);
      native_bytes_ = model_->packed_bytes();
      Napi::MemoryManagement::AdjustExternalMemory(env, native_bytes_);
    } else {
      // The packed weights live in a Float32Array tied to this object (see new_floats). The weights'
      // pointers were taken above; allocating runs JS (the allocator), so take them again after.
      const int64_t floats = fastgru::Model::arena_floats(c, kt);
      Napi::Float32Array memory = new_floats(env, floats);
      take_pointers();
      fastgru::Arena arena(data_of(memory), floats);
      model_ = std::make_shared<const fastgru::Model>(c, weights, kt, &arena);
      keep_alive(env, info.This().As<Napi::Object>(), memory);
    }
    return env.Undefined();
  });
}

Napi::Value ModelWrap::Forward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Call call = read_call(info, 6);
    Napi::Float32Array output = new_floats(env, call.sizes.output);
    Napi::Float32Array hidden = new_floats(env, call.sizes.h);
    take_inputs(info, call);  // the allocations ran JS: take the pointers after them
    model_->forward(call.batch, data_of(output), data_of(hidden), fastgru::default_pool(), call.threads);
    Napi::Object result = Napi::Object::New(env);
    define(result, "output", output);
    define(result, "hidden", hidden);
    return result;
  });
}

// forwardAsync: the inputs are copied when the call is made, or held when they lie in batch buffers
// (rule 5), so transferring or detaching the caller's buffers while the work runs cannot reach the
// worker; the outputs are allocated here and
// held by references until the promise settles, and the caller sees them only then.
class ForwardWorker : public Napi::AsyncWorker {
 public:
  ForwardWorker(Napi::Env env, std::shared_ptr<const fastgru::Model> model, const Napi::Object& owner, const Call& call)
      : Napi::AsyncWorker(env, "fastgru.forwardAsync"), deferred_(Napi::Promise::Deferred::New(env)),
        model_(std::move(model)), owner_(Napi::Persistent(owner)), call_(call),
        aborted_flag_(std::make_shared<std::atomic<bool>>(false)) {
    // (call_ shares the native copy of lengths that read_call made.) x and h0 in a batch buffer
    // (rule 5) are read where they are, under a reference to their block; any other is copied. No
    // JS has run since read_call took the pointers, so they are the arrays' current memory.
    call_.batch.x = hold_or_copy(call.batch.x, call.sizes.x, x_block_, x_);
    if (call.batch.h0) call_.batch.h0 = hold_or_copy(call.batch.h0, call.sizes.h, h0_block_, h0_);
    Napi::Float32Array output = new_floats(env, call.sizes.output);
    Napi::Float32Array hidden = new_floats(env, call.sizes.h);
    out_ = data_of(output);
    hid_ = data_of(hidden);
    output_ = Napi::Persistent(output);
    hidden_ = Napi::Persistent(hidden);
  }

  // The bytes of x and h0 this call copied (none of what lies in batch buffers).
  size_t copied_bytes() const { return copied_bytes_; }


  // The promise, with an abort() method: work that has not started yet is then skipped and the
  // promise rejects with ERR_ABORTED. The flag is native memory shared with the worker.
  Napi::Promise promise() const {
    Napi::Promise promise = deferred_.Promise();
    auto* flag = new std::shared_ptr<std::atomic<bool>>(aborted_flag_);
    Napi::Function abort = Napi::Function::New(
        Env(), [](const Napi::CallbackInfo& info) {
          auto* f = static_cast<std::shared_ptr<std::atomic<bool>>*>(info.Data());
          (*f)->store(true);
          return info.Env().Undefined();
        }, "abort", flag);
    abort.AddFinalizer([](Napi::Env, std::shared_ptr<std::atomic<bool>>* f) { delete f; }, flag);
    define(promise, "abort", abort);
    return promise;
  }

  void Execute() override {
    if (aborted_flag_->load()) {
      aborted_ = true;
      return;
    }
    try {
      model_->forward(call_.batch, out_, hid_, fastgru::default_pool(), call_.threads);
    } catch (const Error& e) {
      code_ = e.code();
      message_ = e.what();
    } catch (const std::bad_alloc&) {
      code_ = "ERR_OUT_OF_MEMORY";
      message_ = "fastgru: out of memory";
    } catch (const std::exception& e) {
      code_ = "ERR_INTERNAL";
      message_ = std::string("fastgru: internal error: ") + e.what();
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (aborted_) {
      deferred_.Reject(make_js_error(env, "ERR_ABORTED", "the call was aborted before it ran").Value());
    } else if (!code_.empty()) {
      deferred_.Reject(make_js_error(env, code_, message_).Value());
    } else {
      Napi::Object result = Napi::Object::New(env);
      define(result, "output", output_.Value());
      define(result, "hidden", hidden_.Value());
      deferred_.Resolve(result);
    }
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  // n floats at p: read where they are when they lie in a batch buffer (holding its block until
  // the work is done), else copied into `copy`. Returns where the work reads them.
  const float* hold_or_copy(const float* p, int64_t n, std::shared_ptr<BatchBlock>& block, std::vector<float>& copy) {
    const size_t bytes = size_t(n) * sizeof(float);
    block = find_batch_block(p, bytes);
    if (block) return p;
    copy.assign(p, p + n);
    copied_bytes_ += bytes;
    return copy.data();
  }

  Napi::Promise::Deferred deferred_;
  std::shared_ptr<const fastgru::Model> model_;
  Napi::ObjectReference owner_;  // the JS model, whose memory holds the packed weights
  Call call_;
  std::vector<float> x_, h0_;                       // the copies of x and h0, or
  std::shared_ptr<BatchBlock> x_block_, h0_block_;  // the batch buffers they lie in, held until done
  size_t copied_bytes_ = 0;
  float* out_ = nullptr;
  float* hid_ = nullptr;
  Napi::Reference<Napi::Float32Array> output_, hidden_;
  std::shared_ptr<std::atomic<bool>> aborted_flag_;
  bool aborted_ = false;
  std::string code_, message_;
};

Napi::Value ModelWrap::ForwardAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    last_copied_bytes_ = 0;
    const Call call = read_call(info, 6);
    auto* worker = new ForwardWorker(env, model_, info.This().As<Napi::Object>(), call);
    last_copied_bytes_ = worker->copied_bytes();
    Napi::Promise promise = worker->promise();
    worker->Queue();
    return promise;
  });
}

// ---------------------------------------------------------------------------------------------
// Training
// ---------------------------------------------------------------------------------------------

class TapeWrap : public Napi::ObjectWrap<TapeWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    Napi::Function cls = DefineClass(env, "Tape", {});
    Napi::Object proto = cls.Get("prototype").As<Napi::Object>();
    proto.DefineProperty(Napi::PropertyDescriptor::Accessor<&TapeWrap::Bytes>("bytes"));
    return cls;
  }
  TapeWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TapeWrap>(info), env_(info.Env()) {
    info.This().As<Napi::Object>().TypeTag(&kTapeTag);
  }
  // The tape's memory is a Float32Array tied to the tape object (with the model object, whose
  // memory holds the packed weights backward reads): nothing to free here.
  void set(std::shared_ptr<const fastgru::Model> model, std::unique_ptr<fastgru::Tape> tape, const Call& call) {
    model_ = std::move(model);
    tape_ = std::move(tape);
    call_ = call;
  }
  const fastgru::Model* model() const { return model_.get(); }
  const fastgru::Tape* tape() const { return tape_.get(); }
  const Call& call() const { return call_; }

 private:
  // A plain accessor on the prototype: `this` is checked for the Tape tag before it is unwrapped.
  static Napi::Value Bytes(const Napi::CallbackInfo& info) {
    if (!has_tag(info.This(), kTapeTag)) throw make_js_error(info.Env(), "ERR_ARGUMENT", "this: expected a fastgru Tape");
    const TapeWrap* self = Unwrap(info.This().As<Napi::Object>());
    return Napi::Number::New(info.Env(), self->tape_ ? double(self->tape_->bytes()) : 0.0);
  }
  napi_env env_;
  std::shared_ptr<const fastgru::Model> model_;  // the tape's model outlives the JS model object
  std::unique_ptr<fastgru::Tape> tape_;
  Call call_;
};

Napi::Value ModelWrap::ForwardTrain(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const fastgru::GruConfig& c = model_->config();
    // The masks' elements are read (getters may run) before any pointer is taken, up to the length
    // read once (rule 1): a getter that shortens the array leaves the rest undefined, refused below.
    std::vector<Napi::Value> mask_values;
    const Napi::Value mv = info[6];
    if (!mv.IsNull() && !mv.IsUndefined()) {
      if (!mv.IsArray()) fail("ERR_ARGUMENT", "dropoutMasks", "an array of Float32Arrays", describe(mv));
      Napi::Array list = mv.As<Napi::Array>();
      const uint32_t listed = list.Length();
      if (int64_t(listed) != c.num_layers - 1)
        fail("ERR_SHAPE", "dropoutMasks", std::to_string(c.num_layers - 1) + " masks (numLayers - 1)", std::to_string(listed));
      for (uint32_t l = 0; l < listed; l++) mask_values.push_back(list.Get(l));
    }
    // Checks the arguments and takes their pointers: once to size the results, and again after the
    // allocations, which run JS (a buffer may have been detached or replaced meanwhile). The sizes
    // and lengths are read once, in read_call.
    std::vector<const float*> masks;
    Call call = read_call(info, 7);
    auto take_masks = [&]() {
      masks.clear();
      for (size_t l = 0; l < mask_values.size(); l++)
        masks.push_back(to_floats(mask_values[l], "dropoutMasks[" + std::to_string(l) + "]", call.sizes.output).data);
    };
    take_masks();
    Napi::Float32Array output = new_floats(env, call.sizes.output);
    Napi::Float32Array hidden = new_floats(env, call.sizes.h);
    const int64_t floats = model_->tape_floats(call.batch, !masks.empty());
    Napi::Float32Array memory = new_floats(env, floats);
    take_inputs(info, call);
    take_masks();
    fastgru::Arena arena(data_of(memory), floats);
    std::unique_ptr<fastgru::Tape> tape =
        model_->forward_train(call.batch, masks.empty() ? nullptr : masks.data(), data_of(output), data_of(hidden),
                              fastgru::default_pool(), call.threads, &arena);
    Napi::Object tape_obj = tape_ctor_ref(env).New({});
    keep_alive(env, tape_obj, memory, info.This());
    Call kept = call;
    kept.batch.x = nullptr;  // the tape holds its own copy; nothing points at the caller's buffers
    kept.batch.h0 = nullptr;
    kept.batch.lengths = nullptr;
    kept.lengths = nullptr;
    TapeWrap::Unwrap(tape_obj)->set(model_, std::move(tape), kept);
    Napi::Object result = Napi::Object::New(env);
    define(result, "output", output);
    define(result, "hidden", hidden);
    define(result, "tape", tape_obj);
    return result;
  });
}

Napi::Value ModelWrap::Backward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (!has_tag(info[0], kTapeTag))
      fail("ERR_ARGUMENT", "tape", "the tape of a forwardTrain call", describe(info[0]));
    TapeWrap* tw = TapeWrap::Unwrap(info[0].As<Napi::Object>());
    if (!tw->tape()) fail("ERR_ARGUMENT", "tape", "the tape of a forwardTrain call", "an empty tape");
    if (tw->model() != model_.get()) fail("ERR_ARGUMENT", "tape", "a tape of this model", "a tape of another model");
    const Call& call = tw->call();
    const fastgru::GruConfig& c = model_->config();
    // Checks the upstream gradients and takes their pointers: before the allocations, and again
    // after them (they run JS).
    auto upstream = [&]() {
      return std::make_pair(to_floats_or_null(info[1], "dOutput", call.sizes.output).data,
                            to_floats_or_null(info[2], "dHidden", call.sizes.h).data);
    };
    upstream();
    const int threads = int(to_int(info[3], "threads", 1, 1024));
    const int D = c.num_directions;
    const int64_t H = c.hidden_size;
    Napi::Float32Array d_input = new_floats(env, call.sizes.x);
    Napi::Float32Array d_h0 = new_floats(env, call.sizes.h);
    Napi::Array grads = Napi::Array::New(env);
    // Each direction's gradients: wIh, wHh and, with bias, bIh, bHh. Their pointers are taken after
    // the last allocation (rule 2).
    std::vector<std::vector<Napi::Float32Array>> made;
    for (int k = 0; k < c.num_layers * D; k++) {
      const int64_t I = k < D ? c.input_size : D * H;
      Napi::Object g = Napi::Object::New(env);
      made.push_back({new_floats(env, 3 * H * I), new_floats(env, 3 * H * H)});
      if (c.bias) {
        made.back().push_back(new_floats(env, 3 * H));
        made.back().push_back(new_floats(env, 3 * H));
      }
      define(g, "wIh", made.back()[0]);
      define(g, "wHh", made.back()[1]);
      define(g, "bIh", c.bias ? Napi::Value(made.back()[2]) : env.Null());
      define(g, "bHh", c.bias ? Napi::Value(made.back()[3]) : env.Null());
      define(grads, std::to_string(k), g);
    }
    std::vector<fastgru::DirectionGradients> outs(made.size());
    for (size_t k = 0; k < made.size(); k++) {
      outs[k].w_ih = data_of(made[k][0]);
      outs[k].w_hh = data_of(made[k][1]);
      if (c.bias) {
        outs[k].b_ih = data_of(made[k][2]);
        outs[k].b_hh = data_of(made[k][3]);
      }
    }
    const auto [d_out, d_hid] = upstream();
    model_->backward(*tw->tape(), d_out, d_hid, data_of(d_input), data_of(d_h0), outs, fastgru::default_pool(),
                     threads);
    Napi::Object result = Napi::Object::New(env);
    define(result, "dInput", d_input);
    define(result, "dH0", d_h0);
    define(result, "grads", grads);
    return result;
  });
}

// ---------------------------------------------------------------------------------------------
// Module functions
// ---------------------------------------------------------------------------------------------

Napi::Value JsInit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (!info[0].IsFunction()) fail("ERR_ARGUMENT", "makeError", "a function (code, message) => Error", describe(info[0]));
    if (!info[1].IsUndefined() && !info[1].IsFunction())
      fail("ERR_ARGUMENT", "allocate", "a function (n) => Float32Array", describe(info[1]));
    // Once (rule 4): the memory of live models and tapes came from the first allocator.
    if (initialized_ref(env))
      fail("ERR_ARGUMENT", "init",
           "one call per thread (the addon keeps the makeError and allocate it was given first)", "a second call");
    make_error_ref(env) = Napi::Persistent(info[0].As<Napi::Function>());
    if (info[1].IsFunction()) allocate_ref(env) = Napi::Persistent(info[1].As<Napi::Function>());
    initialized_ref(env) = true;
    return env.Undefined();
  });
}

Napi::Value JsInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::Object o = Napi::Object::New(env);
    const fastgru::CpuFeatures& f = fastgru::cpu_features();
    Napi::Array isas = Napi::Array::New(env);
    const std::vector<std::string> list = fastgru::available_isas();
    for (size_t i = 0; i < list.size(); i++) isas.Set(uint32_t(i), Napi::String::New(env, list[i]));
    o.Set("isas", isas);
    // The default thread count, where it came from, and the cap every call clamps to; requested is
    // FASTGRU_THREADS when it asked for more than the cap (0 otherwise), for backendInfo() to say so.
    const fastgru::DefaultThreads d = fastgru::default_threads_info();
    const fastgru::ThreadCount& cap = fastgru::thread_cap();
    o.Set("defaultThreads", Napi::Number::New(env, d.count.threads));
    o.Set("threadsFrom", Napi::String::New(env, fastgru::thread_source_name(d.count.from)));
    o.Set("maxThreads", Napi::Number::New(env, cap.threads));
    o.Set("maxThreadsFrom", Napi::String::New(env, fastgru::thread_source_name(cap.from)));
    o.Set("requestedThreads", Napi::Number::New(env, d.requested > cap.threads ? d.requested : 0));
    Napi::Object cpu = Napi::Object::New(env);
    cpu.Set("avx2", Napi::Boolean::New(env, f.avx2_fma));
    cpu.Set("avx512f", Napi::Boolean::New(env, f.avx512f));
    cpu.Set("neon", Napi::Boolean::New(env, f.neon));
    o.Set("cpu", cpu);
    // Last, so a bad FASTGRU_ISA still reports the rest before it throws.
    o.Set("isa", Napi::String::New(env, fastgru::active_kernels().name));
    return o;
  });
}

// fmaPeak(threads, seconds = 0.5): the machine's FMA throughput in GFLOP/s on `threads` threads
// (native/core/fma_peak.h). The benchmark's export only (bench/bench.mjs quotes it beside the GRU's
// own figures); the engine never calls the probe and the package's API does not expose it.
Napi::Value JsFmaPeak(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    // Any count 1..1024 is accepted; fma_peak_gflops runs at most thread_cap() of them.
    const int threads = int(to_int(info[0], "threads", 1, 1024));
    if (!info[1].IsUndefined() && !info[1].IsNumber()) fail("ERR_ARGUMENT", "seconds", "a number in (0, 60]", describe(info[1]));
    const double seconds = info[1].IsNumber() ? info[1].As<Napi::Number>().DoubleValue() : 0.5;
    if (!(seconds > 0 && seconds <= 60)) fail("ERR_ARGUMENT", "seconds", "a number in (0, 60]", describe(info[1]));
    return Napi::Number::New(env, fastgru::fma_peak_gflops(fastgru::active_kernels(), fastgru::default_pool(),
                                                           threads, seconds));
  });
}

// matmul(m, n, k, a, aRs, aCs, b, bRs, bCs, c, accumulate): C = (accumulate ? C : 0) + A·B (see
// fastgru::matmul). Every extent is checked against its array; C may overlap A or B (the product
// goes to a temporary first).
Napi::Value JsMatmul(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const int64_t lim = (int64_t(1) << 31) - 1;
    const int64_t m = to_int(info[0], "m", 0, lim), n = to_int(info[1], "n", 0, lim), k = to_int(info[2], "k", 0, lim);
    const int64_t a_rs = to_int(info[4], "aRs", 0, lim), a_cs = to_int(info[5], "aCs", 0, lim);
    const int64_t b_rs = to_int(info[7], "bRs", 0, lim), b_cs = to_int(info[8], "bCs", 0, lim);
    const ArrayArg<float> a = to_floats(info[3], "a", -1);
    const ArrayArg<float> b = to_floats(info[6], "b", -1);
    const ArrayArg<float> c = to_floats(info[9], "c", -1);
    const bool accumulate = to_bool(info[10], "accumulate");
    // The last element each operand reads, in 128 bits: no product of checked sizes can overflow.
    auto reach = [](int64_t rows, int64_t rs, int64_t cols, int64_t cs) -> __int128 {
      if (rows == 0 || cols == 0) return -1;
      return __int128(rows - 1) * rs + __int128(cols - 1) * cs;
    };
    if (reach(m, a_rs, k, a_cs) >= __int128(a.length))
      fail("ERR_SHAPE", "a", "an array holding A(m-1, k-1) at (m-1)*aRs + (k-1)*aCs", elements(a.length));
    if (reach(k, b_rs, n, b_cs) >= __int128(b.length))
      fail("ERR_SHAPE", "b", "an array holding B(k-1, n-1) at (k-1)*bRs + (n-1)*bCs", elements(b.length));
    if (__int128(m) * n > __int128(c.length)) fail("ERR_SHAPE", "c", "an array of at least m*n elements", elements(c.length));
    fastgru::matmul(fastgru::active_kernels(), m, n, k, a.data, a_rs, a_cs, b.data, b_rs, b_cs, c.data, accumulate);
    return env.Undefined();
  });
}

class Addon : public Napi::Addon<Addon> {
 public:
  Addon(Napi::Env env, Napi::Object exports) {
    // A worker terminated while it loads the addon makes these calls fail: nothing may escape.
    try {
      Setup(env, exports);
    } catch (const Napi::Error&) {
    }
  }
  void Setup(Napi::Env env, Napi::Object exports) {
    Napi::Function model = ModelWrap::Define(env);
    Napi::Function tape = TapeWrap::Define(env);
    model_ctor = Napi::Persistent(model);
    tape_ctor = Napi::Persistent(tape);
    exports.Set("Model", RequireNew<&Addon::model_ctor>(env, model, "Model"));
    exports.Set("Tape", RequireNew<&Addon::tape_ctor>(env, tape, "Tape"));
    keep = Napi::Persistent(env.RunScript(kKeepSource).As<Napi::Function>());
    exports.Set("init", Napi::Function::New(env, JsInit, "init"));
    exports.Set("info", Napi::Function::New(env, JsInfo, "info"));
    exports.Set("fmaPeak", Napi::Function::New(env, JsFmaPeak, "fmaPeak"));
    exports.Set("matmul", Napi::Function::New(env, JsMatmul, "matmul"));
    exports.Set("batchBuffer", Napi::Function::New(env, JsBatchBuffer, "batchBuffer"));
    exports.Set("batchBufferStats", Napi::Function::New(env, JsBatchBufferStats, "batchBufferStats"));
  }
  // node-addon-api's class constructors, called without new, throw a TypeError without a code. The
  // exported constructors are plain functions that say so with ERR_ARGUMENT, and otherwise construct
  // the class (same prototype, so instanceof holds).
  template <Napi::FunctionReference Addon::*Ctor>
  static Napi::Function RequireNew(Napi::Env env, Napi::Function cls, const char* name) {
    Napi::Function f = Napi::Function::New(env, &Construct<Ctor>, name, const_cast<char*>(name));
    f.Set("prototype", cls.Get("prototype"));
    return f;
  }
  template <Napi::FunctionReference Addon::*Ctor>
  static Napi::Value Construct(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info.IsConstructCall())
      throw make_js_error(env, "ERR_ARGUMENT", std::string(static_cast<const char*>(info.Data())) + ": expected a call with new, got a plain call");
    std::vector<napi_value> args(info.Length());
    for (size_t i = 0; i < args.size(); i++) args[i] = info[i];
    return (addon_of(env)->*Ctor).New(args);
  }
  Napi::FunctionReference make_error;  // (code, message) => Error, handed over once by init()
  Napi::FunctionReference allocate;    // (n) => Float32Array, handed over by init()
  bool initialized = false;            // init() succeeded: a second call is refused
  Napi::FunctionReference keep;        // (owner, a, b): ties a and b to owner (keep_alive)
  Napi::FunctionReference model_ctor;
  Napi::FunctionReference tape_ctor;
};

Addon* addon_of(Napi::Env env) { return env.GetInstanceData<Addon>(); }
Napi::FunctionReference& make_error_ref(Napi::Env env) { return addon_of(env)->make_error; }
Napi::FunctionReference& tape_ctor_ref(Napi::Env env) { return addon_of(env)->tape_ctor; }
Napi::FunctionReference& allocate_ref(Napi::Env env) { return addon_of(env)->allocate; }
Napi::FunctionReference& keep_ref(Napi::Env env) { return addon_of(env)->keep; }
bool& initialized_ref(Napi::Env env) { return addon_of(env)->initialized; }

}  // namespace

NODE_API_ADDON(Addon)
