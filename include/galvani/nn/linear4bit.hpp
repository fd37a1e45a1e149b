// nn/linear4bit.hpp — bitsandbytes' Linear4bit: a frozen 4-bit weight, an optional bias.
//
// It is a LinearLayer, so it takes the place of a Linear or a GPT-2 Conv1D by name
// (replace_submodule), as transformers' replace_with_bnb_linear does. Its state is what
// transformers saves for it, under the module's prefix P:
//   P.weight                               u8  [(out·in+1)/2, 1]   packed nibbles
//   P.weight.absmax                        f32 [nblocks] (u8 when nested)
//   P.weight.quant_map                     f32 [16]
//   P.weight.nested_absmax                 f32 [ceil(nblocks/256)]          (nested only)
//   P.weight.nested_quant_map              f32 [256]                        (nested only)
//   P.weight.quant_state.bitsandbytes__nf4 u8  [len]  the quant-state JSON ("…__fp4" for FP4)
//   P.bias                                 (out), a parameter
// It reads them itself (read_own_tensor) through the one load path. Given a float `weight`
// instead (a bf16/f32 checkpoint), it quantizes it on arrival, so a model is quantized on load
// tensor by tensor; a weight from a Conv1D (in, out) is transposed to (out, in) first, as
// transformers does.
#pragma once
#include "../quant/nf4_matmul.hpp"
#include <cstring>
#include <optional>

#include "layers.hpp"

namespace galvani {

struct Linear4bitOptions {
  quant::Quantize4bitOptions quant;  // quant type, block size, double quantization
  bool from_conv1d = false;          // a float weight arrives (in, out): transpose before quantizing
  bool expect_packed = true;         // the checkpoint holds the bnb keys (else a float weight)
  // The dtype a float weight is cast to before quantizing: the model's, as transformers'
  // from_pretrained(dtype=…) casts a bf16 checkpoint to float32 first (the quant state's JSON
  // then says "float32"). Unset: the weight's own dtype.
  std::optional<DType> weight_dtype;
};

class Linear4bit : public LinearLayer {
 public:
  Tensor bias;  // (out) or undefined

  Linear4bit(int64_t in, int64_t out, bool has_bias, Linear4bitOptions opt, const ModuleInit& init = {})
      : in_(in), out_(out), opt_(opt) {
    if (has_bias) {
      bias = init.constant({out}, 0.0);
      register_parameter("bias", bias);
    }
  }
  // Quantize an existing layer's weight (out, in) — or (in, out) for a Conv1D — now.
  static std::unique_ptr<Linear4bit> from_linear(const LinearLayer& base, const Tensor& weight, const Tensor& bias,
                                                 Linear4bitOptions opt) {
    opt.from_conv1d = base.fan_in_fan_out();
    auto m = std::make_unique<Linear4bit>(base.in_features(), base.out_features(), bias.defined(), opt,
                                          ModuleInit{ModuleInit::Mode::empty, nullptr, bias.defined() ? bias.dtype() : DType::f32});
    if (bias.defined()) copy_into(m->bias, bias.detach());
    m->set_float_weight(weight, "weight");
    return m;
  }

  std::string type_name() const override { return "Linear4bit"; }
  const Linear4bitOptions& options() const { return opt_; }
  int64_t in_features() const override { return in_; }
  int64_t out_features() const override { return out_; }

  // y = x · dequant(W)ᵀ + b, fused (quant/nf4_matmul.hpp); the gradient flows to x (and b).
  Tensor forward(const Tensor& x) const override {
    ready("forward");
    return quant::nf4_linear(x, weight_, bias);
  }
  // The weight as float (out, in) in `dtype` — for tests and merging, never in forward.
  Tensor dequantized(std::optional<DType> dtype = std::nullopt) const {
    ready("dequantized");
    return quant::dequantize_4bit(packed_, state_, dtype);
  }
  const quant::QuantState4bit& quant_state() const { return state_; }
  const Tensor& packed_weight() const { return packed_; }
  // Bytes held: packed weight + quant state (+ bias), as get_memory_footprint counts them.
  int64_t nbytes() const {
    int64_t n = packed_.defined() ? int64_t(packed_.nbytes()) : 0;
    for (const Tensor* t : {&state_.absmax, &state_.code, &state_.nested_absmax, &state_.nested_code, &bias})
      if (t->defined()) n += int64_t(t->nbytes());
    return n;
  }

  // ------------------------------------------------------------ the load path
  std::vector<std::string> own_tensor_names() const override {
    std::vector<std::string> out = {"weight"};
    if (opt_.expect_packed) {
      out.push_back("weight.absmax");
      out.push_back("weight.quant_map");
      if (opt_.quant.double_quant) {
        out.push_back("weight.nested_absmax");
        out.push_back("weight.nested_quant_map");
      }
      out.push_back(std::string("weight.quant_state.bitsandbytes__") + quant::quant_type_name(opt_.quant.quant_type));
    }
    if (bias.defined()) out.push_back("bias");
    return out;
  }
  const TensorImpl* own_tensor_identity(const std::string& local) const override {
    return local == "bias" ? bias.impl() : nullptr;
  }
  void read_own_tensor(const std::string& local, const io::StateEntry& src) override {
    if (local == "bias") return LinearLayer::read_own_tensor(local, src);
    GALVANI_CHECK(!src.is_raw(), "tensor '", src.name, "' has dtype ", src.raw_dtype, ", which a Linear4bit does not read");
    const Tensor& t = src.tensor;
    if (local == "weight") {
      if (t.dtype() != DType::u8) return set_float_weight(t, src.name);
      packed_ = t.clone();
      packed_name_ = src.name;
    } else if (local == "weight.absmax") {
      GALVANI_CHECK(t.dtype() == DType::f32 || t.dtype() == DType::u8, "tensor '", src.name, "': absmax must be F32 or U8, got ",
                    dtype_name(t.dtype()));
      state_.absmax = t.clone();
    } else if (local == "weight.quant_map") {
      GALVANI_CHECK(t.dtype() == DType::f32 && t.numel() == 16, "tensor '", src.name, "': quant_map must be F32 [16], got ",
                    dtype_name(t.dtype()), " ", shape_str(t.shape()));
      state_.code = t.clone();
    } else if (local == "weight.nested_absmax") {
      GALVANI_CHECK(t.dtype() == DType::f32, "tensor '", src.name, "': nested_absmax must be F32");
      state_.nested_absmax = t.clone();
    } else if (local == "weight.nested_quant_map") {
      GALVANI_CHECK(t.dtype() == DType::f32 && t.numel() == 256, "tensor '", src.name, "': nested_quant_map must be F32 [256]");
      state_.nested_code = t.clone();
    } else if (local.starts_with("weight.quant_state.bitsandbytes__")) {
      const Tensor b = t.contiguous();
      const std::string where = src.name.substr(0, src.name.size() - (local.size() - 6));  // "P.weight"
      quant::QuantState4bit js = quant::QuantState4bit::from_json(
          std::string(reinterpret_cast<const char*>(b.raw_data()), size_t(b.numel())), where);
      GALVANI_CHECK(local.ends_with(quant::quant_type_name(js.quant_type)), "tensor '", src.name,
                    "': the key says one quant type, the JSON says ", quant::quant_type_name(js.quant_type));
      js.absmax = state_.absmax;
      js.code = state_.code;
      js.nested_absmax = state_.nested_absmax;
      js.nested_code = state_.nested_code;
      state_ = js;
      json_seen_ = true;
      state_name_ = where;
    } else {
      throw Error(detail::cat("Linear4bit has no tensor '", local, "' (loading '", src.name, "')"));
    }
    weight_ = {};
  }
  void save_own_tensors(const std::string& prefix, io::StateDict& out) const override {
    ready("save");
    out.insert(prefix + "weight", packed_);
    if (bias.defined()) out.insert(prefix + "bias", bias);
    out.insert(prefix + "weight.absmax", state_.absmax);
    out.insert(prefix + "weight.quant_map", state_.code);
    if (state_.nested) {
      out.insert(prefix + "weight.nested_absmax", state_.nested_absmax);
      out.insert(prefix + "weight.nested_quant_map", state_.nested_code);
    }
    const std::string js = state_.to_json();
    Tensor bytes = Tensor::empty({int64_t(js.size())}, DType::u8);
    std::memcpy(bytes.raw_data(), js.data(), js.size());
    out.insert(prefix + "weight.quant_state.bitsandbytes__" + quant::quant_type_name(state_.quant_type), bytes);
  }

  // Checks that the pieces read so far form one valid 4-bit weight of this layer's shape;
  // every error names the tensor. Called before the first use.
  void validate() const {
    const std::string w = state_name_.empty() ? packed_name_ : state_name_;
    GALVANI_CHECK(packed_.defined(), w, ": no packed weight was loaded");
    GALVANI_CHECK(state_.absmax.defined() && state_.code.defined(), w, ": absmax or quant_map is missing");
    GALVANI_CHECK(json_seen_ || quantized_here_, w, ": the quant state (weight.quant_state.bitsandbytes__nf4) is missing");
    GALVANI_CHECK(state_.shape == (Shape{out_, in_}), w, ": the quant state's shape ", shape_str(state_.shape),
                  " is not this layer's (", out_, ", ", in_, ")");
    const int64_t n = out_ * in_, nb = quant::num_blocks(n, state_.blocksize);
    GALVANI_CHECK(packed_.numel() == (n + 1) / 2, w, ": the packed weight has ", packed_.numel(), " bytes; shape ",
                  shape_str(state_.shape), " needs ", (n + 1) / 2);
    GALVANI_CHECK(state_.absmax.numel() == nb, w, ".absmax has ", state_.absmax.numel(), " entries; ", n,
                  " weights in blocks of ", state_.blocksize, " need ", nb);
    GALVANI_CHECK(state_.absmax.dtype() == (state_.nested ? DType::u8 : DType::f32), w, ".absmax is ",
                  dtype_name(state_.absmax.dtype()), " but the quant state says ", state_.nested ? "nested (U8)" : "not nested (F32)");
    if (state_.nested) {
      GALVANI_CHECK(state_.nested_absmax.defined() && state_.nested_code.defined(), w,
                    ": nested quant state without nested_absmax / nested_quant_map");
      const int64_t nn = quant::num_blocks(nb, state_.nested_blocksize);
      GALVANI_CHECK(state_.nested_absmax.numel() == nn, w, ".nested_absmax has ", state_.nested_absmax.numel(),
                    " entries; ", nb, " absmax in blocks of ", state_.nested_blocksize, " need ", nn);
    }
  }

 private:
  void set_float_weight(const Tensor& t, const std::string& name) {
    const Shape want = opt_.from_conv1d ? Shape{in_, out_} : Shape{out_, in_};
    GALVANI_CHECK(t.shape() == want, "tensor '", name, "' has shape ", shape_str(t.shape()), "; a Linear4bit (", out_,
                  ", ", in_, ")", opt_.from_conv1d ? " from a Conv1D" : "", " wants ", shape_str(want));
    Tensor w = opt_.from_conv1d ? t.transpose(0, 1).contiguous() : t;
    if (opt_.weight_dtype && w.dtype() != *opt_.weight_dtype) w = w.to(*opt_.weight_dtype);
    quant::Quantized4bit q = quant::quantize_4bit(w, opt_.quant, name);
    packed_ = q.packed;
    state_ = std::move(q.state);
    quantized_here_ = true;
    packed_name_ = name;
    weight_ = {};
  }
  void ready(const char* what) const {
    if (weight_.packed.defined()) return;
    validate();
    weight_.packed = packed_;
    weight_.absmax = Tensor::from_vector(state_.absmax_f32(), {state_.nblocks()});
    weight_.quant_type = state_.quant_type;
    weight_.blocksize = state_.blocksize;
    weight_.out_features = out_;
    weight_.in_features = in_;
  }

  int64_t in_, out_;
  Linear4bitOptions opt_;
  Tensor packed_;                  // u8 [(out·in+1)/2, 1]
  quant::QuantState4bit state_;
  bool json_seen_ = false, quantized_here_ = false;
  std::string packed_name_, state_name_;
  mutable quant::Weight4bit weight_;  // cached un-nested absmax for the matmuls
};

}  // namespace galvani
