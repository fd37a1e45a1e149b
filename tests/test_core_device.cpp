// Devices without a GPU: the CPU allocator, the allocator registry, to(Device), the one
// dispatch point (mixed devices, a device without a kernel) and host_values' refusal of
// device memory. "cuda" tensors here are fakes: host memory labelled cuda:0 through
// Storage::borrow or a test allocator, so the error paths run on any machine — their bytes
// are never read, because dispatch and host_values stop first.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include <galvani/galvani.hpp>

using namespace galvani;

namespace {

// A tensor that claims to live on cuda:0 over host memory it owns.
Tensor fake_cuda(const Shape& shape, DType dtype = DType::f32) {
  auto bytes = std::make_shared<std::vector<unsigned char>>(size_t(numel_of(shape)) * itemsize(dtype) + 64);
  return Tensor::from_blob(bytes->data(), shape, dtype, bytes, Device::cuda(0));
}

// Hands out host memory for a device: lets a test make "cuda" outputs without a GPU.
struct HostMemoryAllocator final : Allocator {
  DataPtr allocate(size_t nbytes) override {
    return DataPtr(std::malloc(nbytes ? nbytes : 1), [](void* p) { std::free(p); });
  }
  const char* name() const override { return "test: host memory posing as a device"; }
};

// Registers the fake allocator for cuda:0 for one scope.
struct FakeCudaAllocatorScope {
  HostMemoryAllocator allocator;
  FakeCudaAllocatorScope() { register_allocator(Device::cuda(0), &allocator); }
  ~FakeCudaAllocatorScope() { register_allocator(Device::cuda(0), nullptr); }
};

}  // namespace

TEST_CASE("the CPU allocator aligns as before: 64 bytes, 2 MiB from 2 MiB up", "[core][device]") {
  Allocator& cpu = allocator_for(Device::cpu());
  for (size_t n : {size_t(0), size_t(1), size_t(100), size_t(4096), (size_t(2) << 20) - 1}) {
    DataPtr p = cpu.allocate(n);
    REQUIRE(p != nullptr);
    CHECK(reinterpret_cast<uintptr_t>(p.get()) % 64 == 0);
  }
  DataPtr big = cpu.allocate(size_t(2) << 20);
  CHECK(reinterpret_cast<uintptr_t>(big.get()) % (size_t(2) << 20) == 0);
  // Tensors get their memory from it, on the device they name.
  Tensor t = Tensor::empty({3, 5});
  CHECK(t.device() == Device::cpu());
  CHECK(reinterpret_cast<uintptr_t>(t.raw_data()) % Storage::kAlignment == 0);
}

TEST_CASE("asking for a CUDA allocator in a build without one is a clear error", "[core][device]") {
  CHECK_THROWS_WITH(allocator_for(Device::cuda(0)),
                    Catch::Contains("built without CUDA") && Catch::Contains("cuda:0 tensors need a build with "
                                                                            "-DGALVANI_CUDA=ON and a GPU"));
  CHECK_THROWS_WITH(Tensor::empty({2}, DType::f32, Device::cuda(1)), Catch::Contains("cuda:1"));
  CHECK_THROWS_WITH(register_allocator(Device::cpu(), nullptr), Catch::Contains("cannot be replaced"));
  // A registered allocator is used for exactly its device, and unregistering restores the error.
  {
    FakeCudaAllocatorScope scope;
    CHECK(&allocator_for(Device::cuda(0)) == &scope.allocator);
    CHECK(Tensor::empty({4}, DType::f32, Device::cuda(0)).device() == Device::cuda(0));
    CHECK_THROWS_WITH(allocator_for(Device::cuda(1)), Catch::Contains("cuda:1"));
  }
  CHECK_THROWS(allocator_for(Device::cuda(0)));
}

TEST_CASE("to(Device::cpu()) on a CPU tensor is the tensor itself; to(DType) still converts", "[core][device]") {
  Tensor a = Tensor::from_vector<float>({1, 2, 3});
  Tensor b = a.to(Device::cpu());
  CHECK(b.is_same(a));  // no copy when nothing moves (torch's semantics)
  CHECK(a.to(DType::f64).to_vector<double>() == std::vector<double>{1, 2, 3});
  // copy_between_devices CPU → CPU is a copy: the destination owns new memory.
  Tensor c = Tensor::empty({3});
  copy_between_devices(c, a);
  CHECK(c.to_vector<float>() == a.to_vector<float>());
  CHECK(c.raw_data() != a.raw_data());
  // Moving to a device this build cannot reach says so.
  CHECK_THROWS_WITH(a.to(Device::cuda(0)), Catch::Contains("built without CUDA"));
  {
    FakeCudaAllocatorScope scope;  // memory exists, a host↔device copy does not
    CHECK_THROWS_WITH(a.to(Device::cuda(0)), Catch::Contains("copy from cpu to cuda:0") &&
                                                 Catch::Contains("-DGALVANI_CUDA=ON"));
  }
}

TEST_CASE("an op given inputs on two devices names the op and every input's device", "[core][device][dispatch]") {
  Tensor x = Tensor::ones({2, 4});
  Tensor w = fake_cuda({4});
  CHECK_THROWS_WITH(layer_norm(x, w, Tensor()),
                    Catch::Contains("layer_norm: inputs are on different devices: input cpu, weight cuda:0"));
  CHECK_THROWS_WITH(rms_norm(x, w, 1e-6), Catch::Contains("rms_norm") && Catch::Contains("input cpu") &&
                                              Catch::Contains("weight cuda:0"));
  CHECK_THROWS_WITH(Tensor::ones({4}) + fake_cuda({4}), Catch::Contains("add: inputs are on different devices"));
  CHECK_THROWS_WITH(embedding(Tensor::ones({5, 4}), fake_cuda({2}, DType::i64)),
                    Catch::Contains("cannot read a cuda:0 tensor on the host"));
}

TEST_CASE("an op without a kernel for a device is a clear error, never a host read", "[core][device][dispatch]") {
  // dispatch itself: a CPU kernel only.
  bool ran = false;
  auto cpu_only = [&]<class T>() { ran = true; };
  CHECK_THROWS_WITH(dispatch("my_op", {{"x", fake_cuda({3})}}, FloatTypes{DType::f32}, cpu_only),
                    Catch::Equals("my_op has no kernel for cuda:0"));
  CHECK_FALSE(ran);
  dispatch("my_op", {{"x", Tensor::ones({3})}}, FloatTypes{DType::f32}, cpu_only);
  CHECK(ran);
  // A CUDA launcher, when given, is what runs for a cuda tensor.
  bool launched = false;
  dispatch("my_op", {{"x", fake_cuda({3})}}, FloatTypes{DType::f32}, cpu_only, [&]<class T>() { launched = true; });
  CHECK(launched);
  // Real ops, with a (fake) allocator present so their outputs can be made on the device.
  FakeCudaAllocatorScope scope;
  CHECK_THROWS_WITH(rms_norm(fake_cuda({2, 4}), fake_cuda({4}), 1e-6), Catch::Equals("rms_norm has no kernel for cuda:0"));
  CHECK_THROWS_WITH(exp(fake_cuda({3})), Catch::Contains("exp has no kernel for cuda:0"));
  CHECK_THROWS_WITH(Tensor::zeros({3}, DType::f32, Device::cuda(0)), Catch::Contains("Tensor::zeros has no kernel for cuda:0"));
}

TEST_CASE("host_values reads CPU tensors in any layout and refuses device memory", "[core][device]") {
  Tensor a = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(host_values<double>(a.t()) == std::vector<double>{1, 4, 2, 5, 3, 6});
  CHECK(host_values<int64_t>(Tensor::arange(4, DType::i32)) == std::vector<int64_t>{0, 1, 2, 3});
  CHECK_THROWS_WITH(host_values<float>(fake_cuda({3}), "my_reader"),
                    Catch::Contains("my_reader: cannot read a cuda:0 tensor on the host") &&
                        Catch::Contains("built without CUDA"));
  CHECK_THROWS_WITH(fake_cuda({1}).item(), Catch::Contains("item: cannot read a cuda:0 tensor"));
  CHECK_THROWS_WITH(rope(Tensor::zeros({1, 1, 2, 4}), fake_cuda({2}, DType::i64)),
                    Catch::Contains("rope (positions): cannot read a cuda:0 tensor on the host"));
}
