package io.mmdit4j.sd3;

import io.mmdit4j.guidance.BlockConditioning;
import io.mmdit4j.guidance.LayerSchedule;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Generator;
import org.bytedeco.pytorch.GeneratorOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.bytedeco.pytorch.global.torch.createCPUGenerator;
import static org.bytedeco.pytorch.global.torch.equal;
import static org.bytedeco.pytorch.global.torch.randn;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Modulation guidance on a tiny random SD3.5-Medium-like model: w = 0 is the plain forward bit for bit; the rule's layers. */
class Sd3GuidanceTest {
    /** 3 joint blocks, 2 heads x 8, dual attention in block 0, RMS q/k norms. */
    static final Sd3Config TINY = new Sd3Config(16, 2, 16, 16, 3, 8, 2, 24, 16, 20, 8, true, List.of(0));

    /** Random inputs: latents [2,16,6,10], text [2,5,24], pooled [2,20] ×2 (guidance prompts too), timesteps [2]. */
    static Tensor[] inputs() {
        Generator g = createCPUGenerator(7);
        TensorOptions f32 = new TensorOptions(ScalarType.Float);
        GeneratorOptional gen = new GeneratorOptional(g);
        return new Tensor[] {randn(new long[] {2, 16, 6, 10}, gen, f32), randn(new long[] {2, 5, 24}, gen, f32),
                randn(new long[] {2, 20}, gen, f32), Tensors.fromFloats(new float[] {1000f, 602.15f}, 2),
                randn(new long[] {2, 20}, gen, f32), randn(new long[] {2, 20}, gen, f32)};
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "BF16"})
    void zeroWeightIsBitIdenticalToPlainAndNonZeroChangesTheOutput(DType dtype) {
        try (Sd3Transformer m = Sd3Transformer.random(TINY, 3, dtype); PointerScope s = new PointerScope()) {
            Tensor[] in = inputs();
            Tensor plain = m.forward(in[0], in[1], in[2], in[3]);
            assertArrayEquals(new long[] {2, 16, 6, 10}, Tensors.shape(plain));
            try (ModulationGuidance zero = ModulationGuidance.builder().term(m.guidanceDelta(in[4], in[5]), 0.0, LayerSchedule.all()).build()) {
                assertTrue(equal(plain, m.forward(in[0], in[1], in[2], in[3], zero, 0)), "w = 0 must give the plain output bit for bit");
            }
            try (ModulationGuidance g = ModulationGuidance.builder().term(m.guidanceDelta(in[4], in[5]), 2.0, LayerSchedule.from(1)).build()) {
                assertFalse(equal(plain, m.forward(in[0], in[1], in[2], in[3], g, 0)), "w = 2 must change the output");
            }
        }
    }

    @Test
    void guidedLayersAreTheJointBlocksAndNormOutKeepsThePlainVector() {
        try (Sd3Transformer m = Sd3Transformer.random(TINY, 3, DType.F32); PointerScope s = new PointerScope()) {
            Tensor[] in = inputs();
            assertEquals(3, m.numGuidedBlocks());
            List<BlockConditioning> seen = new ArrayList<>();
            List<Float> expected = new ArrayList<>(); // inside the forward's scope: read values, keep no tensor
            try (ModulationGuidance g = ModulationGuidance.builder().term(m.guidanceDelta(in[4], in[5]), 3.0, LayerSchedule.from(1)).build()) {
                m.forward(in[0], in[1], in[2], in[3], g, 0, (step, cond) -> {
                    seen.add(cond);
                    assertFalse(cond.isGuided(0));
                    assertTrue(cond.isGuided(1) && cond.isGuided(2));
                    assertSame(cond.temb(), cond.finalVector(), "norm_out gets the plain temb");
                    // temb_guided = temb + w * (TextMLP(pos) - TextMLP(neg)), the whole time_text_embed difference
                    Tensor byDefinition = cond.temb().add(m.timeTextEmbed(in[3], in[4]).sub(m.timeTextEmbed(in[3], in[5])).mul(new Scalar(3.0)));
                    expected.add(byDefinition.sub(cond.vector(1)).abs().max().item_float());
                });
            }
            assertEquals(1, seen.size());
            assertTrue(expected.get(0) < 1e-4, "guided vector differs from its definition by " + expected.get(0));
        }
    }

    @Test
    void guidanceOutsideTheModelAndBadInputsAreRejectedBeforeNativeWork() {
        try (Sd3Transformer m = Sd3Transformer.random(TINY, 3, DType.F32); PointerScope s = new PointerScope()) {
            Tensor[] in = inputs();
            try (ModulationGuidance g = ModulationGuidance.builder().term(m.guidanceDelta(in[4], in[5]), 1.0, LayerSchedule.interval(2, 5)).build()) {
                assertThrows(IllegalArgumentException.class, () -> m.forward(in[0], in[1], in[2], in[3], g, 0));
            }
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> m.forward(in[0].narrow(2, 0, 5), in[1], in[2], in[3]));
            assertTrue(e.getMessage().contains("multiples of the patch size 2"), e.getMessage());
            Tensor big = randn(new long[] {2, 16, 18, 10}, new GeneratorOptional(), new TensorOptions(ScalarType.Float));
            e = assertThrows(IllegalArgumentException.class, () -> m.forward(big, in[1], in[2], in[3]));
            assertTrue(e.getMessage().contains("exceeds the positional table of 8 patches"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> m.forward(in[0], in[1].narrow(2, 0, 20), in[2], in[3]));
            assertTrue(e.getMessage().contains("encoder_hidden_states has shape [2, 5, 20], expected [2, S, 24]"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> m.forward(in[0], in[1], in[2].narrow(0, 0, 1), in[3]));
            assertTrue(e.getMessage().contains("pooled_projections"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> m.guidanceDelta(in[1], in[5]));
            assertTrue(e.getMessage().contains("expected [rows, 20]"), e.getMessage());
        }
    }
}
