// jax231's native 2-D convolution kernels for XLA:CPU, as XLA FFI handlers.
//
// Layouts: x (N, H, W, C_in), w (K, K, C_in, C_out), y (N, H_out, W_out, C_out), row-major.
// Two kernels, four handlers (float32 and float64 each):
//
//   forward      y[n,i,j,o]  = sum_{u,v,c} xpad[n, S*i+u, S*j+v, c] * w[u,v,c,o]
//   filter grad  dw[u,v,c,o] = sum_{n,i,j} xpad[n, S*i+u, S*j+v, c] * dy[n,i,j,o]
//
// (the input gradient of a stride-1 convolution is the forward kernel applied to dy with the
// flipped, transposed filter: jax231/models/layers/_native.py). xpad is x with pad_h rows and
// pad_w columns of zeros in front; the zeros behind follow from the output shape.
//
// Both kernels copy one image at a time into a zero-padded buffer (so the inner loops have no
// bounds checks) and keep a register tile of accumulators: 64-byte vectors (GCC vector
// extensions: AVX-512 zmm registers with -march=native on this CPU, pairs of ymm with AVX2)
// along the output channels, C_out a multiple of 16 floats or 8 doubles. Forward: P output
// pixels of one row x V channel vectors (P*V = 24 accumulators); per input channel and tap, V
// weight-vector loads and P broadcasts feed P*V FMAs. Filter gradient: the K taps of one filter
// row x CB input channels x V channel vectors (about 24 accumulators), accumulated over every pixel of one
// image before they go back to memory.
//
// Threads: the images are split into a fixed number of chunks, pulled by the calling thread and
// by tasks on XLA's intra-op thread pool. The filter gradient sums one partial per chunk, in
// chunk order, so its bits depend on the shapes only, never on the number of threads.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

typedef float VecF32 __attribute__((vector_size(64), aligned(4)));
typedef double VecF64 __attribute__((vector_size(64), aligned(8)));
template <typename T>
struct VecOf;
template <>
struct VecOf<float> {
  using type = VecF32;
};
template <>
struct VecOf<double> {
  using type = VecF64;
};
template <typename T>
using Vec = typename VecOf<T>::type;
template <typename T>
constexpr int kLanes = 64 / sizeof(T);

template <typename T>
inline Vec<T> load(const T* p) {
  Vec<T> v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
template <typename T>
inline void store(T* p, const Vec<T>& v) {
  std::memcpy(p, &v, sizeof(v));
}

struct Geometry {
  int64_t n, h, w, ci;  // input
  int64_t ho, wo, co;   // output (of the forward convolution)
  int64_t k, stride, pad_h, pad_w;
  int64_t hp, wp;  // padded image: the rows and columns the windows read
};

// Image n of x into xpad (hp x wp x ci), zeros where the windows read outside the image.
template <typename T>
void pad_image(const Geometry& g, const T* x, int64_t n, T* xpad) {
  std::fill(xpad, xpad + g.hp * g.wp * g.ci, T(0));
  const int64_t dst_c0 = std::max<int64_t>(0, g.pad_w), src_c0 = std::max<int64_t>(0, -g.pad_w);
  const int64_t cols = std::min(g.w - src_c0, g.wp - dst_c0);
  if (cols <= 0) return;
  for (int64_t r = 0; r < g.hp; ++r) {
    const int64_t src_r = r - g.pad_h;
    if (src_r < 0 || src_r >= g.h) continue;
    std::memcpy(xpad + (r * g.wp + dst_c0) * g.ci, x + ((n * g.h + src_r) * g.w + src_c0) * g.ci,
                cols * g.ci * sizeof(T));
  }
}

// Runs body(chunk) for chunk in [0, chunks) on the calling thread and the pool; returns when all are done.
template <typename Body>
void parallel_chunks(ffi::ThreadPool& pool, int64_t chunks, Body body) {
  struct Shared {
    explicit Shared(Body b) : body(std::move(b)) {}
    Body body;
    std::atomic<int64_t> next{0}, done{0};
    std::mutex mu;
    std::condition_variable cv;
  };
  auto shared = std::make_shared<Shared>(std::move(body));
  auto run = [shared, chunks]() {
    for (int64_t c; (c = shared->next.fetch_add(1)) < chunks;) {
      shared->body(c);
      if (shared->done.fetch_add(1) + 1 == chunks) {
        std::lock_guard<std::mutex> lock(shared->mu);
        shared->cv.notify_all();
      }
    }
  };
  const int64_t helpers = std::min<int64_t>(pool.num_threads(), chunks) - 1;
  for (int64_t i = 0; i < helpers; ++i) pool.Schedule([run] { run(); });
  run();
  std::unique_lock<std::mutex> lock(shared->mu);
  shared->cv.wait(lock, [&] { return shared->done.load() == chunks; });
}

// ----------------------------------------------------------------------------------------------
// Forward.

// P pixels (j0 .. j0+P-1 of output row i) x V channel vectors (from o0).
template <typename T, int P, int V>
void forward_tile(const Geometry& g, const T* xpad, const T* w, T* yrow, int64_t i, int64_t j0, int64_t o0) {
  constexpr int L = kLanes<T>;
  Vec<T> acc[P][V];
#pragma GCC unroll 24
  for (int p = 0; p < P; ++p)
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) acc[p][v] = Vec<T>{};
  const int64_t xstep = g.stride * g.ci;
  for (int64_t u = 0; u < g.k; ++u) {
    const T* xrow = xpad + ((i * g.stride + u) * g.wp + j0 * g.stride) * g.ci;
    for (int64_t v_ = 0; v_ < g.k; ++v_) {
      const T* xk = xrow + v_ * g.ci;
      const T* wk = w + ((u * g.k + v_) * g.ci) * g.co + o0;
      for (int64_t c = 0; c < g.ci; ++c) {
        Vec<T> wv[V];
#pragma GCC unroll 8
        for (int v = 0; v < V; ++v) wv[v] = load(wk + c * g.co + v * L);
#pragma GCC unroll 24
        for (int p = 0; p < P; ++p) {
          const T xs = xk[p * xstep + c];
#pragma GCC unroll 8
          for (int v = 0; v < V; ++v) acc[p][v] += wv[v] * xs;
        }
      }
    }
  }
#pragma GCC unroll 24
  for (int p = 0; p < P; ++p)
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) store(yrow + (j0 + p) * g.co + o0 + v * L, acc[p][v]);
}

// The last pixels of a row: a tile of exactly `count` (< 24 / V) pixels.
template <typename T, int V, int P = 24 / V>
void forward_tail(const Geometry& g, const T* xpad, const T* w, T* yrow, int64_t i, int64_t j0, int64_t o0,
                  int64_t count) {
  if constexpr (P >= 1) {
    if (count == P) return forward_tile<T, P, V>(g, xpad, w, yrow, i, j0, o0);
    return forward_tail<T, V, P - 1>(g, xpad, w, yrow, i, j0, o0, count);
  }
}

template <typename T, int V>
void forward_images(const Geometry& g, const T* x, const T* w, T* y, int64_t n0, int64_t n1) {
  constexpr int L = kLanes<T>;
  constexpr int P = 24 / V;
  std::vector<T> xpad(g.hp * g.wp * g.ci);
  for (int64_t n = n0; n < n1; ++n) {
    pad_image(g, x, n, xpad.data());
    for (int64_t i = 0; i < g.ho; ++i) {
      T* yrow = y + (n * g.ho + i) * g.wo * g.co;
      for (int64_t o0 = 0; o0 < g.co; o0 += V * L) {
        int64_t j0 = 0;
        for (; j0 + P <= g.wo; j0 += P) forward_tile<T, P, V>(g, xpad.data(), w, yrow, i, j0, o0);
        if (j0 < g.wo) forward_tail<T, V>(g, xpad.data(), w, yrow, i, j0, o0, g.wo - j0);
      }
    }
  }
}

// ----------------------------------------------------------------------------------------------
// Filter gradient.

// dw[u, 0..K-1, c0..c0+CB-1, o0..o0+V*L-1] += over every output pixel of one image.
template <typename T, int K, int CB, int V>
void filter_grad_tile(const Geometry& g, const T* xpad, const T* dyn, T* dw, int64_t u, int64_t c0, int64_t o0) {
  constexpr int L = kLanes<T>;
  Vec<T> acc[K][CB][V];
  for (int v_ = 0; v_ < K; ++v_)
    for (int c = 0; c < CB; ++c)
      for (int v = 0; v < V; ++v) acc[v_][c][v] = load(dw + ((u * K + v_) * g.ci + c0 + c) * g.co + o0 + v * L);
  const int64_t xstep = g.stride * g.ci;
  for (int64_t i = 0; i < g.ho; ++i) {
    const T* xrow = xpad + ((i * g.stride + u) * g.wp) * g.ci + c0;
    const T* dyrow = dyn + i * g.wo * g.co + o0;
    for (int64_t j = 0; j < g.wo; ++j) {
      Vec<T> d[V];
#pragma GCC unroll 8
      for (int v = 0; v < V; ++v) d[v] = load(dyrow + j * g.co + v * L);
      const T* xp = xrow + j * xstep;
#pragma GCC unroll 3
      for (int v_ = 0; v_ < K; ++v_)
#pragma GCC unroll 8
        for (int c = 0; c < CB; ++c) {
          const T xs = xp[v_ * g.ci + c];
#pragma GCC unroll 8
          for (int v = 0; v < V; ++v) acc[v_][c][v] += d[v] * xs;
        }
    }
  }
  for (int v_ = 0; v_ < K; ++v_)
    for (int c = 0; c < CB; ++c)
      for (int v = 0; v < V; ++v) store(dw + ((u * K + v_) * g.ci + c0 + c) * g.co + o0 + v * L, acc[v_][c][v]);
}

template <typename T, int K, int V, int CB = std::max(1, std::min(8, 24 / (K * V)))>
void filter_grad_channels(const Geometry& g, const T* xpad, const T* dyn, T* dw, int64_t u, int64_t c0, int64_t o0,
                          int64_t count) {
  if constexpr (CB >= 1) {
    if (count == CB) return filter_grad_tile<T, K, CB, V>(g, xpad, dyn, dw, u, c0, o0);
    return filter_grad_channels<T, K, V, CB - 1>(g, xpad, dyn, dw, u, c0, o0, count);
  }
}

template <typename T, int K, int V>
void filter_grad_images(const Geometry& g, const T* x, const T* dy, T* dw, int64_t n0, int64_t n1) {
  constexpr int L = kLanes<T>;
  constexpr int CB = std::max(1, std::min(8, 24 / (K * V)));
  std::vector<T> xpad(g.hp * g.wp * g.ci);
  std::fill(dw, dw + K * K * g.ci * g.co, T(0));
  for (int64_t n = n0; n < n1; ++n) {
    pad_image(g, x, n, xpad.data());
    const T* dyn = dy + n * g.ho * g.wo * g.co;
    for (int64_t u = 0; u < K; ++u)
      for (int64_t c0 = 0; c0 < g.ci; c0 += CB)
        for (int64_t o0 = 0; o0 < g.co; o0 += V * L)
          filter_grad_channels<T, K, V>(g, xpad.data(), dyn, dw, u, c0, o0, std::min<int64_t>(CB, g.ci - c0));
  }
}

template <typename T, int K>
void filter_grad_dispatch(const Geometry& g, const T* x, const T* dy, T* dw, int64_t n0, int64_t n1) {
  const int64_t vectors = g.co / kLanes<T>;
  if (vectors % 8 == 0) return filter_grad_images<T, K, 8>(g, x, dy, dw, n0, n1);
  if (vectors % 4 == 0) return filter_grad_images<T, K, 4>(g, x, dy, dw, n0, n1);
  if (vectors % 2 == 0) return filter_grad_images<T, K, 2>(g, x, dy, dw, n0, n1);
  return filter_grad_images<T, K, 1>(g, x, dy, dw, n0, n1);
}

constexpr int64_t kFilterGradChunks = 8;  // fixed, so the order of the sum depends on the shapes only
constexpr int64_t kForwardChunks = 64;

// Checks the shapes and fills g; x is (N, H, W, C_in), out_spatial the (N, H_out, W_out, C_out) array.
template <typename T>
ffi::Error geometry(ffi::Span<const int64_t> xd, int64_t k, int64_t ci_w, int64_t co, ffi::Span<const int64_t> yd,
                    int64_t stride, int64_t pad_h, int64_t pad_w, Geometry* g) {
  if (xd.size() != 4 || yd.size() != 4 || xd[0] != yd[0] || ci_w != xd[3] || yd[3] != co || co % kLanes<T> != 0 ||
      stride < 1 || k < 1)
    return ffi::Error::InvalidArgument("jax231 native convolution: unsupported shapes");
  *g = Geometry{xd[0], xd[1], xd[2], xd[3], yd[1], yd[2], co, k, stride, pad_h, pad_w, 0, 0};
  g->hp = (g->ho - 1) * stride + k;
  g->wp = (g->wo - 1) * stride + k;
  return ffi::Error::Success();
}

template <ffi::DataType D>
ffi::Error forward(ffi::ThreadPool pool, ffi::Buffer<D> x, ffi::Buffer<D> w, ffi::ResultBuffer<D> y, int64_t stride,
                   int64_t pad_h, int64_t pad_w) {
  using T = ffi::NativeType<D>;
  auto wd = w.dimensions();
  if (wd.size() != 4 || wd[0] != wd[1]) return ffi::Error::InvalidArgument("jax231 native convolution: bad filter");
  Geometry g;
  if (auto e = geometry<T>(x.dimensions(), wd[0], wd[2], wd[3], y->dimensions(), stride, pad_h, pad_w, &g);
      e.failure())
    return e;
  const T* xp = x.typed_data();
  const T* wp = w.typed_data();
  T* yp = y->typed_data();
  const int64_t vectors = g.co / kLanes<T>;
  const int64_t chunks = std::max<int64_t>(1, std::min(g.n, kForwardChunks));
  parallel_chunks(pool, chunks, [=](int64_t c) {
    const int64_t n0 = g.n * c / chunks, n1 = g.n * (c + 1) / chunks;
    if (vectors % 8 == 0) forward_images<T, 8>(g, xp, wp, yp, n0, n1);
    else if (vectors % 4 == 0) forward_images<T, 4>(g, xp, wp, yp, n0, n1);
    else if (vectors % 2 == 0) forward_images<T, 2>(g, xp, wp, yp, n0, n1);
    else forward_images<T, 1>(g, xp, wp, yp, n0, n1);
  });
  return ffi::Error::Success();
}

template <ffi::DataType D>
ffi::Error filter_grad(ffi::ThreadPool pool, ffi::Buffer<D> x, ffi::Buffer<D> dy, ffi::ResultBuffer<D> dw,
                       int64_t stride, int64_t pad_h, int64_t pad_w) {
  using T = ffi::NativeType<D>;
  auto wd = dw->dimensions();
  if (wd.size() != 4 || wd[0] != wd[1] || wd[0] > 3)
    return ffi::Error::InvalidArgument("jax231 native convolution: filter gradient needs a 1x1, 2x2 or 3x3 filter");
  Geometry g;
  if (auto e = geometry<T>(x.dimensions(), wd[0], wd[2], wd[3], dy.dimensions(), stride, pad_h, pad_w, &g);
      e.failure())
    return e;
  const T* xp = x.typed_data();
  const T* dyp = dy.typed_data();
  T* out = dw->typed_data();
  const int64_t size = g.k * g.k * g.ci * g.co;
  const int64_t chunks = std::max<int64_t>(1, std::min(g.n, kFilterGradChunks));
  std::vector<T> partial(chunks * size);
  T* parts = partial.data();
  parallel_chunks(pool, chunks, [=](int64_t c) {
    const int64_t n0 = g.n * c / chunks, n1 = g.n * (c + 1) / chunks;
    T* dst = parts + c * size;
    if (g.k == 3) filter_grad_dispatch<T, 3>(g, xp, dyp, dst, n0, n1);
    else if (g.k == 2) filter_grad_dispatch<T, 2>(g, xp, dyp, dst, n0, n1);
    else filter_grad_dispatch<T, 1>(g, xp, dyp, dst, n0, n1);
  });
  std::copy(parts, parts + size, out);
  for (int64_t c = 1; c < chunks; ++c)
    for (int64_t i = 0; i < size; ++i) out[i] += parts[c * size + i];
  return ffi::Error::Success();
}

}  // namespace

#define JAX231_BIND(D)       \
  ffi::Ffi::Bind()           \
      .Ctx<ffi::ThreadPool>() \
      .Arg<ffi::Buffer<D>>() \
      .Arg<ffi::Buffer<D>>() \
      .Ret<ffi::Buffer<D>>() \
      .Attr<int64_t>("stride") \
      .Attr<int64_t>("pad_h") \
      .Attr<int64_t>("pad_w")

XLA_FFI_DEFINE_HANDLER_SYMBOL(Jax231ConvForwardF32, forward<ffi::F32>, JAX231_BIND(ffi::F32));
XLA_FFI_DEFINE_HANDLER_SYMBOL(Jax231ConvForwardF64, forward<ffi::F64>, JAX231_BIND(ffi::F64));
XLA_FFI_DEFINE_HANDLER_SYMBOL(Jax231ConvFilterGradF32, filter_grad<ffi::F32>, JAX231_BIND(ffi::F32));
XLA_FFI_DEFINE_HANDLER_SYMBOL(Jax231ConvFilterGradF64, filter_grad<ffi::F64>, JAX231_BIND(ffi::F64));
