// The argument checks of every op (kernels/checks.h states the contract and the message forms).
#include "kernels/checks.h"

#include <string>

namespace spectra::kernels {

namespace {

// "f32[4, 8]": a tensor as the messages show it (no device: the contract is the same on both).
std::string desc(const Tensor& t) {
  return fmt::format("{}{}", dtype_name(t.dtype()), shape_str(t.shape()));
}

DType acc_dtype(DType t) { return t == DType::f64 ? DType::f64 : DType::f32; }

// Rows of a [.., d] tensor (leading dimensions flattened) and its last dimension.
int64_t rows_of(const Tensor& t) {
  int64_t n = 1;
  for (int64_t i = 0; i + 1 < t.dim(); i++) n *= t.size(i);
  return n;
}
int64_t cols_of(const Tensor& t) { return t.dim() ? t.size(-1) : 1; }

[[noreturn]] void fail(const char* op, const std::string& name, const Tensor& t,
                       const std::string& what) {
  throw Error(fmt::format("{}: {} is {}, expected {}", op, name, desc(t), what));
}
[[noreturn]] void disagree(const char* op, const std::string& an, const Tensor& a,
                           const std::string& bn, const Tensor& b) {
  throw Error(fmt::format("{}: {} {} and {} {} disagree", op, an, desc(a), bn, desc(b)));
}

void floating(const char* op, const std::string& name, const Tensor& t) {
  if (!is_floating(t.dtype())) fail(op, name, t, "a float dtype");
}
void dtype(const char* op, const std::string& name, const Tensor& t, DType want) {
  if (t.dtype() != want) fail(op, name, t, std::string(dtype_name(want)));
}
// `t` holds n elements of dtype `want` (a saved statistic, a per-row vector, γ).
void vector(const char* op, const std::string& name, const Tensor& t, int64_t n, DType want) {
  if (t.numel() != n || t.dtype() != want)
    fail(op, name, t, fmt::format("{} {} element{}", n, dtype_name(want), n == 1 ? "" : "s"));
}
// b has a's shape and dtype.
void same(const char* op, const std::string& an, const Tensor& a, const std::string& bn,
          const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) disagree(op, an, a, bn, b);
}
// b's dtype is a's, or also a's acc dtype when `or_acc` (16-bit compute writing into f32).
void dtype_of(const char* op, const std::string& an, const Tensor& a, const std::string& bn,
              const Tensor& b, bool or_acc) {
  const DType acc = acc_dtype(a.dtype());
  if (b.dtype() == a.dtype() || (or_acc && b.dtype() == acc)) return;
  const std::string want = or_acc && acc != a.dtype()
                               ? fmt::format("{} or {}", dtype_name(a.dtype()), dtype_name(acc))
                               : std::string(dtype_name(a.dtype()));
  throw Error(fmt::format("{}: {} {} and {} {} disagree: {} must be {}", op, an, desc(a), bn,
                          desc(b), bn, want));
}
void at_least_1d(const char* op, const std::string& name, const Tensor& t) {
  if (t.dim() < 1) fail(op, name, t, "at least one dimension");
}

// RMSNorm's x [N, d], gain g [d] (x's dtype or acc) and rstd [N] (acc).
void rmsnorm_common(const char* op, const Tensor& x, const Tensor& g, const Tensor& rstd) {
  floating(op, "x", x);
  at_least_1d(op, "x", x);
  if (g.numel() != cols_of(x)) disagree(op, "x", x, "g", g);
  dtype_of(op, "x", x, "g", g, true);
  vector(op, "rstd", rstd, rows_of(x), acc_dtype(x.dtype()));
}

void rope_common(const char* op, const char* xn, const Tensor& x, const char* outn,
                 const Tensor& out) {
  floating(op, xn, x);
  if (x.dim() != 4 || x.size(3) % 2 != 0) fail(op, xn, x, "[B, T, H, Dh] with an even Dh");
  same(op, xn, x, outn, out);
}

// q [B, Tq, H, Dh]; k, v [B, Tk, H, Dh] with Tk >= Tq (== Tq when `equal_t`), q's dtype; lse
// [B, H, Tq] in acc.
void attention_common(const char* op, const Tensor& q, const Tensor& k, const Tensor& v,
                      const Tensor& lse, bool equal_t) {
  floating(op, "q", q);
  if (q.dim() != 4) fail(op, "q", q, "[B, Tq, H, Dh]");
  const int64_t b = q.size(0), tq = q.size(1), h = q.size(2), dh = q.size(3);
  const bool k_ok = k.dim() == 4 && k.size(0) == b && k.size(2) == h && k.size(3) == dh &&
                    (equal_t ? k.size(1) == tq : k.size(1) >= tq);
  if (!k_ok)
    fail(op, "k", k,
         equal_t ? fmt::format("{} like q (the backward pass needs Tk == Tq)", shape_str(q.shape()))
                 : fmt::format("[{}, Tk, {}, {}] with Tk >= Tq = {}", b, h, dh, tq));
  dtype_of(op, "q", q, "k", k, false);
  same(op, "k", k, "v", v);
  const Shape lse_shape{b, h, tq};
  if (lse.shape() != lse_shape || lse.dtype() != acc_dtype(q.dtype()))
    fail(op, "lse", lse,
         fmt::format("{}{}", dtype_name(acc_dtype(q.dtype())), shape_str(lse_shape)));
}

// logits [N, V]; targets [N] i32; a, b [N] in acc.
void cross_entropy_common(const char* op, const Tensor& logits, const Tensor& targets,
                          const char* an, const Tensor& a, const char* bn, const Tensor& b) {
  floating(op, "logits", logits);
  at_least_1d(op, "logits", logits);
  dtype(op, "targets", targets, DType::i32);
  const int64_t n = rows_of(logits);
  if (targets.numel() != n) disagree(op, "logits", logits, "targets", targets);
  vector(op, an, a, n, acc_dtype(logits.dtype()));
  vector(op, bn, b, n, acc_dtype(logits.dtype()));
}

// ids [N] i32; table [V, d]; rows [N, d] with leading dimensions flattened. The caller checks
// the dtypes.
void embedding_shapes(const char* op, const Tensor& ids, const char* tn, const Tensor& table,
                      const char* rn, const Tensor& rows) {
  dtype(op, "ids", ids, DType::i32);
  if (table.dim() != 2) fail(op, tn, table, "[V, d]");
  if (rows.dim() < 1 || rows_of(rows) != ids.numel() || rows.size(-1) != table.size(1))
    fail(op, rn, rows, fmt::format("[{}, {}]", ids.numel(), table.size(1)));
}

}  // namespace

void check_matmul(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, const Tensor& c,
                  const Tensor* scale) {
  const char* op = "matmul";
  floating(op, "a", a);
  for (auto [name, t] : {std::pair{"a", &a}, {"b", &b}, {"c", &c}}) at_least_1d(op, name, *t);
  dtype_of(op, "a", a, "b", b, false);
  dtype_of(op, "a", a, "c", c, true);
  const int64_t ar = rows_of(a), ac = cols_of(a), br = rows_of(b), bc = cols_of(b);
  const int64_t m = trans_a ? ac : ar, k = trans_a ? ar : ac;
  const int64_t kb = trans_b ? bc : br, n = trans_b ? br : bc;
  if (k != kb || rows_of(c) != m || cols_of(c) != n)
    throw Error(fmt::format(
        "matmul: op(a) [{}, {}] x op(b) [{}, {}] does not give c {} (a {}{}, b {}{})", m, k, kb, n,
        desc(c), desc(a), trans_a ? "ᵀ" : "", desc(b), trans_b ? "ᵀ" : ""));
  if (scale) vector(op, "scale", *scale, 1, DType::f32);
}

void check_ternary_quantize(const Tensor& w, const Tensor& t, const Tensor& gamma) {
  const char* op = "ternary_quantize";
  floating(op, "w", w);
  floating(op, "t", t);
  if (t.shape() != w.shape()) disagree(op, "w", w, "t", t);
  vector(op, "gamma", gamma, 1, DType::f32);
}

void check_ternary_quantize_groups(const Tensor& w, int64_t groups, int axis,
                                   const Tensor& effective, const Tensor& gamma) {
  const char* op = "ternary_quantize_groups";
  floating(op, "w", w);
  if (w.dim() != 2) fail(op, "w", w, "[rows, cols]");
  floating(op, "effective", effective);
  if (effective.shape() != w.shape()) disagree(op, "w", w, "effective", effective);
  if (axis != 0 && axis != 1) throw Error(fmt::format("{}: axis is {}, expected 0 or 1", op, axis));
  if (groups < 1 || w.size(axis) % groups != 0)
    throw Error(
        fmt::format("{}: groups is {}, expected a positive divisor of {} (w {} along axis {})", op,
                    groups, w.size(axis), desc(w), axis));
  vector(op, "gamma", gamma, groups, DType::f32);
}

void check_rmsnorm_forward(const Tensor& x, const Tensor& g, const Tensor& y, const Tensor& rstd) {
  const char* op = "rmsnorm_forward";
  rmsnorm_common(op, x, g, rstd);
  same(op, "x", x, "y", y);
}

void check_rmsnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& g, const Tensor& rstd,
                            const Tensor& dx, const Tensor& dg) {
  const char* op = "rmsnorm_backward";
  rmsnorm_common(op, x, g, rstd);
  same(op, "x", x, "dy", dy);
  same(op, "x", x, "dx", dx);
  if (dg.shape() != g.shape()) disagree(op, "g", g, "dg", dg);
  if (dg.dtype() != acc_dtype(x.dtype()))
    fail(op, "dg", dg, fmt::format("{} (the acc dtype of x)", dtype_name(acc_dtype(x.dtype()))));
}

void check_add_rmsnorm_forward(const Tensor& x, const Tensor& r, const Tensor& g, const Tensor& h,
                               const Tensor& y, const Tensor& rstd) {
  const char* op = "add_rmsnorm_forward";
  rmsnorm_common(op, x, g, rstd);
  same(op, "x", x, "r", r);
  same(op, "x", x, "h", h);
  same(op, "x", x, "y", y);
}

void check_add_rmsnorm_backward(const Tensor& dy, const Tensor& dh, const Tensor& h,
                                const Tensor& g, const Tensor& rstd, const Tensor& dx,
                                const Tensor& dr, const Tensor& dg) {
  const char* op = "add_rmsnorm_backward";
  rmsnorm_common(op, h, g, rstd);
  same(op, "h", h, "dy", dy);
  same(op, "h", h, "dh", dh);
  same(op, "h", h, "dx", dx);
  same(op, "h", h, "dr", dr);
  if (dg.shape() != g.shape()) disagree(op, "g", g, "dg", dg);
  if (dg.dtype() != acc_dtype(h.dtype()))
    fail(op, "dg", dg, fmt::format("{} (the acc dtype of h)", dtype_name(acc_dtype(h.dtype()))));
}

void check_swiglu_forward(const Tensor& gate, const Tensor& up, const Tensor& out) {
  const char* op = "swiglu_forward";
  floating(op, "gate", gate);
  same(op, "gate", gate, "up", up);
  same(op, "gate", gate, "out", out);
}

void check_swiglu_backward(const Tensor& dout, const Tensor& gate, const Tensor& up,
                           const Tensor& dgate, const Tensor& dup) {
  const char* op = "swiglu_backward";
  floating(op, "gate", gate);
  same(op, "gate", gate, "dout", dout);
  same(op, "gate", gate, "up", up);
  same(op, "gate", gate, "dgate", dgate);
  same(op, "gate", gate, "dup", dup);
}

void check_rope_forward(const Tensor& x, const Tensor& out) {
  rope_common("rope_forward", "x", x, "out", out);
}
void check_rope_backward(const Tensor& dout, const Tensor& dx) {
  rope_common("rope_backward", "dout", dout, "dx", dx);
}

void check_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& o,
                             const Tensor& lse) {
  const char* op = "attention_forward";
  attention_common(op, q, k, v, lse, false);
  same(op, "q", q, "o", o);
}

void check_attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                              const Tensor& o, const Tensor& lse, const Tensor& dq,
                              const Tensor& dk, const Tensor& dv) {
  const char* op = "attention_backward";
  attention_common(op, q, k, v, lse, true);
  same(op, "q", q, "dout", dout);
  same(op, "q", q, "o", o);
  same(op, "q", q, "dq", dq);
  same(op, "k", k, "dk", dk);
  same(op, "v", v, "dv", dv);
}

void check_embedding_forward(const Tensor& ids, const Tensor& table, const Tensor& out) {
  const char* op = "embedding_forward";
  floating(op, "table", table);
  embedding_shapes(op, ids, "table", table, "out", out);
  dtype_of(op, "table", table, "out", out, false);
}

void check_embedding_backward(const Tensor& ids, const Tensor& dout, const Tensor& dtable) {
  const char* op = "embedding_backward";
  floating(op, "dout", dout);
  embedding_shapes(op, ids, "dtable", dtable, "dout", dout);
  // dtable accumulates in acc: f32 for 16-bit dout, dout's dtype otherwise.
  if (dtable.dtype() != acc_dtype(dout.dtype()))
    throw Error(fmt::format("{}: dout {} and dtable {} disagree: dtable must be {}", op, desc(dout),
                            desc(dtable), dtype_name(acc_dtype(dout.dtype()))));
}

void check_cross_entropy_forward(const Tensor& logits, const Tensor& targets, const Tensor& loss,
                                 const Tensor& lse) {
  cross_entropy_common("cross_entropy_forward", logits, targets, "loss", loss, "lse", lse);
}

void check_cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse,
                                  const Tensor& dloss, const Tensor& dlogits) {
  const char* op = "cross_entropy_backward";
  cross_entropy_common(op, logits, targets, "lse", lse, "dloss", dloss);
  same(op, "logits", logits, "dlogits", dlogits);
}

void check_cross_entropy_mean(const Tensor& loss, const Tensor& targets, const Tensor& mean,
                              const Tensor& count) {
  const char* op = "cross_entropy_mean";
  floating(op, "loss", loss);
  if (loss.dim() != 1) fail(op, "loss", loss, "[N]");
  dtype(op, "targets", targets, DType::i32);
  if (targets.numel() != loss.numel()) disagree(op, "loss", loss, "targets", targets);
  vector(op, "mean", mean, 1, loss.dtype());
  vector(op, "count", count, 1, loss.dtype());
}

void check_cross_entropy_mean_backward(const Tensor& dmean, const Tensor& count,
                                       const Tensor& dloss) {
  const char* op = "cross_entropy_mean_backward";
  floating(op, "dloss", dloss);
  if (dloss.dim() != 1) fail(op, "dloss", dloss, "[N]");
  vector(op, "dmean", dmean, 1, dloss.dtype());
  vector(op, "count", count, 1, dloss.dtype());
}

void check_adamw_step(const std::vector<AdamWTensor>& tensors) {
  const char* op = "adamw_step";
  for (size_t i = 0; i < tensors.size(); i++) {
    const AdamWTensor& t = tensors[i];
    auto name = [&](const char* field) { return fmt::format("tensors[{}].{}", i, field); };
    dtype(op, name("param"), t.param, DType::f32);
    same(op, name("param"), t.param, name("grad"), t.grad);
    same(op, name("param"), t.param, name("m"), t.m);
    same(op, name("param"), t.param, name("v"), t.v);
    if (!t.compute.defined()) continue;
    floating(op, name("compute"), t.compute);
    if (t.compute.shape() != t.param.shape())
      disagree(op, name("param"), t.param, name("compute"), t.compute);
  }
}

void check_add(const Tensor& a, const Tensor& b, const Tensor& out) {
  floating("add", "a", a);
  same("add", "a", a, "b", b);
  same("add", "a", a, "out", out);
}

void check_axpy(const Tensor& x, const Tensor& y) {
  floating("axpy", "x", x);
  if (y.shape() != x.shape()) disagree("axpy", "x", x, "y", y);
  dtype_of("axpy", "x", x, "y", y, true);
}

void check_scale(const Tensor& x) { floating("scale", "x", x); }

void check_cast(const Tensor& src, const Tensor& dst) {
  floating("cast", "src", src);
  floating("cast", "dst", dst);
  if (src.shape() != dst.shape()) disagree("cast", "src", src, "dst", dst);
}

void check_sum_squares(const std::vector<Tensor>& xs) {
  for (size_t i = 0; i < xs.size(); i++) floating("sum_squares", fmt::format("xs[{}]", i), xs[i]);
}

}  // namespace spectra::kernels
