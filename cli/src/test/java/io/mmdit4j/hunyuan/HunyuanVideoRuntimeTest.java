package io.mmdit4j.hunyuan;

import io.mmdit4j.GoldenData;
import io.mmdit4j.guidance.LayerSchedule;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.nn.Rope;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.ProcessMemory;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;

import static org.bytedeco.pytorch.global.torch.equal;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Compute dtypes, random models, RoPE reuse and native memory of the HunyuanVideo transformer. */
class HunyuanVideoRuntimeTest {
    private static final HunyuanVideoConfig TINY = new HunyuanVideoConfig(16, 16, 2, 16, 2, 2, 1, 128, 2, 1, true, 32, 24, 256.0,
            new int[] {4, 6, 6});

    private static SafetensorsFile inputs() {
        return SafetensorsFile.open(GoldenData.root().resolve("hunyuan_video_transformer/cases/tiny_modg_w3_s1/inputs.safetensors"));
    }

    @Test
    void bf16ComputeTracksFp32OnTheSameRandomWeights() {
        try (HunyuanVideoTransformer f32 = HunyuanVideoTransformer.random(TINY, 7, DType.F32);
             HunyuanVideoTransformer bf16 = HunyuanVideoTransformer.random(TINY, 7, DType.BF16);
             SafetensorsFile in = inputs(); PointerScope scope = new PointerScope()) {
            Tensor a = HunyuanVideoTransformerGoldenTest.forward(f32, in, ModulationGuidance.none());
            Tensor b = HunyuanVideoTransformerGoldenTest.forward(bf16, in, ModulationGuidance.none());
            assertArrayEquals(new long[] {1, 16, 3, 8, 12}, Tensors.shape(b));
            assertEquals(DType.BF16, Tensors.dtype(b));
            float maxRef = a.abs().max().item_float();
            float diff = a.sub(b.to(ScalarType.Float)).abs().max().item_float();
            assertTrue(Float.isFinite(diff) && diff < 0.05f * Math.max(1f, maxRef), "bf16 vs fp32 max diff " + diff + " (max |out| " + maxRef + ")");
        }
    }

    @Test
    void aPrebuiltRopeTableGivesTheSameBitsAsTheBuiltInOne() {
        try (HunyuanVideoTransformer m = HunyuanVideoTransformer.random(TINY, 3, DType.F32); SafetensorsFile in = inputs();
             Rope rope = m.rope(3, 4, 6); PointerScope scope = new PointerScope()) {
            Tensor a = HunyuanVideoTransformerGoldenTest.forward(m, in, ModulationGuidance.none());
            Tensor b = m.forward(in.load("hidden_states"), in.load("timestep"), in.load("encoder_hidden_states"), in.load("encoder_attention_mask"),
                    in.load("pooled_projections"), in.load("guidance"), ModulationGuidance.none(), 0, rope, null);
            assertTrue(equal(a, b));
        }
    }

    @Test
    void repeatedForwardsKeepRssFlat() {
        try (HunyuanVideoTransformer m = HunyuanVideoTransformer.load(HunyuanVideoTransformerGoldenTest.tinyModel(), DType.F32);
             SafetensorsFile in = inputs(); PointerScope outer = new PointerScope();
             ModulationGuidance g = HunyuanVideoTransformerGoldenTest.guidance(m, in, 3.0)) {
            for (int i = 0; i < 40; i++) HunyuanVideoTransformerGoldenTest.forward(m, in, i % 2 == 0 ? ModulationGuidance.none() : g).close();
            long before = ProcessMemory.rssMb();
            for (int i = 0; i < 200; i++) HunyuanVideoTransformerGoldenTest.forward(m, in, i % 2 == 0 ? ModulationGuidance.none() : g).close();
            long growthMb = ProcessMemory.rssMb() - before;
            assertTrue(growthMb < 40, "RSS grew by " + growthMb + " MB over 200 forwards");
        }
    }

    @Test
    void guidanceScheduleCoversDualThenSingleBlocks() {
        try (HunyuanVideoTransformer m = HunyuanVideoTransformer.random(TINY, 5, DType.F32); SafetensorsFile in = inputs();
             PointerScope scope = new PointerScope();
             ModulationGuidance g = ModulationGuidance.builder()
                     .term(m.guidanceDelta(in.load("pooled_pos"), in.load("pooled_neg")), 2.0, LayerSchedule.from(2)).build()) {
            assertEquals(4, m.numGuidedBlocks());
            boolean[] guided = new boolean[4];
            boolean[] finalGuided = new boolean[1];
            Tensor out = m.forward(in.load("hidden_states"), in.load("timestep"), in.load("encoder_hidden_states"), in.load("encoder_attention_mask"),
                    in.load("pooled_projections"), in.load("guidance"), g, 0, null, (step, cond) -> {
                        for (int i = 0; i < 4; i++) guided[i] = cond.isGuided(i);
                        finalGuided[0] = cond.finalVector() != cond.temb();
                    });
            out.close();
            assertArrayEquals(new boolean[] {false, false, true, true}, guided, "start layer 2 = the first single-stream block");
            assertTrue(!finalGuided[0], "norm_out keeps the plain temb");
        }
    }
}
