package io.mmdit4j.train;

import io.mmdit4j.flux.FluxConfig;
import io.mmdit4j.flux.FluxInputs;
import io.mmdit4j.flux.FluxTransformer;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.bytedeco.pytorch.global.torch.createCPUGenerator;
import static org.bytedeco.pytorch.global.torch.equal;
import static org.bytedeco.pytorch.global.torch.full;
import static org.bytedeco.pytorch.global.torch.randn;
import static org.bytedeco.pytorch.global.torch.zeros;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The training path's gradients against central finite differences in fp64: a FLUX model of one double and one single
 * block (the engine's own modules, run by {@link FluxTransformer#forwardWithGrad}), {@code L = Σ out·R}, for sampled
 * elements of the block parameters (every kind of module: adaLN, q/k norms, projections, MLPs, the single block's
 * concatenated output projection) and of LoRA matrices. Also: the autograd forward computes what inference computes.
 */
class FluxGradientCheckTest {
    static final FluxConfig TINY = new FluxConfig(16, 16, 1, 1, 8, 2, 12, 10, true, new int[] {2, 2, 4}, 64);

    static FluxInputs inputs(ScalarType t, long seed) {
        GeneratorOptional g = new GeneratorOptional(createCPUGenerator(seed));
        TensorOptions o = new TensorOptions(t);
        return new FluxInputs(randn(new long[] {1, 6, 16}, g, o), randn(new long[] {1, 3, 12}, g, o), randn(new long[] {1, 10}, g, o),
                full(new long[] {1}, new Scalar(0.4), o), full(new long[] {1}, new Scalar(3.5), o), FluxInputs.imageIds(2, 3),
                zeros(new long[] {3, 3}, new TensorOptions(ScalarType.Float)));
    }

    static double objective(FluxTrainable m, FluxInputs in, Tensor r) {
        try (PointerScope scope = new PointerScope(); NoGradGuard ng = new NoGradGuard()) {
            Tensor out = m.model().forwardWithGrad(in, ModulationGuidance.none(), 0);
            try {
                return out.mul(r).sum().item_double();
            } finally {
                out.close();
            }
        }
    }

    /** Checks autograd's gradient of {@code L} against (L(θ+h) − L(θ−h))/2h for {@code perTensor} elements of each tensor. */
    static void check(FluxTrainable m, List<String> names, int perTensor) {
        try (PointerScope scope = new PointerScope()) {
            FluxInputs in = inputs(ScalarType.Double, 3);
            Tensor r = randn(new long[] {1, 6, 16}, new GeneratorOptional(createCPUGenerator(4)), new TensorOptions(ScalarType.Double));
            Tensor out = m.model().forwardWithGrad(in, ModulationGuidance.none(), 0);
            out.mul(r).sum().backward();
            out.close();
            Random rnd = new Random(5);
            double h = 1e-6;
            int checked = 0;
            for (String name : names) {
                Tensor p = m.trainable().get(name);
                assertTrue(p != null, name);
                double[] grad = Tensors.toDoubles(p.grad());
                Tensor flat = p.detach().view(-1);
                for (int j = 0; j < perTensor; j++) {
                    int k = rnd.nextInt((int) flat.numel());
                    double v;
                    try (NoGradGuard ng = new NoGradGuard()) {
                        v = flat.select(0, k).item_double();
                        flat.narrow(0, k, 1).fill_(new Scalar(v + h));
                    }
                    double plus = objective(m, in, r);
                    try (NoGradGuard ng = new NoGradGuard()) {
                        flat.narrow(0, k, 1).fill_(new Scalar(v - h));
                    }
                    double minus = objective(m, in, r);
                    try (NoGradGuard ng = new NoGradGuard()) {
                        flat.narrow(0, k, 1).fill_(new Scalar(v));
                    }
                    double fd = (plus - minus) / (2 * h);
                    assertEquals(fd, grad[k], 1e-7 + 1e-6 * Math.abs(fd), name + "[" + k + "]: autograd " + grad[k] + ", finite difference " + fd);
                    checked++;
                }
            }
            assertEquals(names.size() * perTensor, checked);
        }
    }

    @Test
    void blockGradientsMatchFiniteDifferencesInFp64() {
        try (FluxTrainable m = FluxTrainable.random(TINY, 11, true, DType.F64)) {
            check(m, List.of("transformer_blocks.0.norm1.linear.weight", "transformer_blocks.0.norm1_context.linear.bias",
                    "transformer_blocks.0.attn.to_q.weight", "transformer_blocks.0.attn.to_k.bias", "transformer_blocks.0.attn.to_v.weight",
                    "transformer_blocks.0.attn.norm_q.weight", "transformer_blocks.0.attn.norm_added_k.weight",
                    "transformer_blocks.0.attn.add_q_proj.weight", "transformer_blocks.0.attn.to_out.0.weight", "transformer_blocks.0.attn.to_add_out.bias",
                    "transformer_blocks.0.ff.net.0.proj.weight", "transformer_blocks.0.ff.net.2.weight", "transformer_blocks.0.ff_context.net.0.proj.bias",
                    "single_transformer_blocks.0.norm.linear.weight", "single_transformer_blocks.0.proj_mlp.weight",
                    "single_transformer_blocks.0.proj_out.weight", "single_transformer_blocks.0.attn.norm_k.weight",
                    "time_text_embed.text_embedder.linear_1.weight", "x_embedder.weight", "proj_out.bias"), 3);
        }
    }

    @Test
    void loraGradientsMatchFiniteDifferencesInFp64() {
        try (FluxTrainable m = FluxTrainable.random(TINY, 12, false, DType.F64)) {
            m.addLora(List.of("to_q", "to_v", "proj_out"), 2, 4, null, 13);
            try (PointerScope scope = new PointerScope(); NoGradGuard ng = new NoGradGuard()) { // B ≠ 0, so A has a gradient too
                for (Map.Entry<String, Tensor> e : m.lora().entrySet()) {
                    if (e.getKey().endsWith("lora_B.weight")) e.getValue().normal_(0, 0.1, new GeneratorOptional(createCPUGenerator(14)));
                }
            }
            assertTrue(m.base().values().stream().noneMatch(Tensor::requires_grad), "the base is frozen");
            check(m, List.of("transformer_blocks.0.attn.to_q.lora_A.weight", "transformer_blocks.0.attn.to_q.lora_B.weight",
                    "single_transformer_blocks.0.attn.to_v.lora_A.weight", "single_transformer_blocks.0.proj_out.lora_A.weight",
                    "single_transformer_blocks.0.proj_out.lora_B.weight", "proj_out.lora_B.weight"), 3);
        }
    }

    @Test
    void autogradForwardEqualsInferenceForward() {
        try (FluxTrainable m = FluxTrainable.random(TINY, 15, true); PointerScope scope = new PointerScope()) {
            FluxInputs in = inputs(ScalarType.Float, 16);
            Tensor inference = m.model().forward(in);
            Tensor withGrad = m.model().forwardWithGrad(in, ModulationGuidance.none(), 0);
            assertTrue(withGrad.requires_grad());
            assertTrue(equal(inference, withGrad.detach()), "the autograd forward differs from inference");
            inference.close();
            withGrad.close();
        }
    }
}
