package io.mmdit4j.hunyuan;

import io.mmdit4j.AtenCapability;
import io.mmdit4j.GoldenData;
import io.mmdit4j.golden.CaseResult;
import io.mmdit4j.golden.GoldenRunner;
import io.mmdit4j.guidance.LayerSchedule;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.io.SafetensorsWriter;
import io.mmdit4j.nn.Rope;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.InferenceMode;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

import static org.bytedeco.pytorch.global.torch.allclose;
import static org.bytedeco.pytorch.global.torch.equal;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every hunyuan_video_transformer golden case, intermediates of the plain case, the original checkpoint layout, w = 0. */
class HunyuanVideoTransformerGoldenTest {
    static Path root() { return GoldenData.root().resolve("hunyuan_video_transformer"); }
    static Path tinyModel() { return root().resolve("models/tiny/transformer"); }
    static Path caseDir(String name) { return root().resolve("cases").resolve(name); }

    @TempDir
    Path tmp;

    @Test
    void allHunyuanVideoTransformerCasesPassWithinTheirTolerances() {
        List<CaseResult> results = new GoldenRunner().run(List.of(root()), r -> { });
        List<String> failures = results.stream().filter(r -> r.status() != CaseResult.Status.PASS)
                .map(CaseResult::line).collect(Collectors.toList());
        assertTrue(failures.isEmpty(), "golden failures:\n" + String.join("\n", failures));
        assertEquals(6, results.stream().map(CaseResult::caseName).distinct().count());
        assertEquals(5, results.stream().filter(r -> r.output().equals("temb_guided")).count(), "guided cases compare temb_guided");
    }

    @Test
    void plainCaseIntermediatesMatchTheReference() {
        try (HunyuanVideoTransformer m = HunyuanVideoTransformer.load(tinyModel(), DType.F32);
             SafetensorsFile in = SafetensorsFile.open(caseDir("tiny_plain").resolve("inputs.safetensors"));
             SafetensorsFile dbg = SafetensorsFile.open(caseDir("tiny_plain").resolve("debug.safetensors"));
             InferenceMode guard = new InferenceMode(); PointerScope scope = new PointerScope()) {
            try (Rope rope = m.rope(3, 4, 6)) {
                close(dbg.load("rope_cos"), rope.cos(), 1e-6);
                close(dbg.load("rope_sin"), rope.sin(), 1e-6);
            }
            Tensor mask = in.load("encoder_attention_mask");
            assertTrue(equal(dbg.load("attention_mask"), HunyuanVideoTransformer.jointKeyMask(mask, 72)), "joint key mask");
            Tensor t = in.load("timestep");
            close(dbg.load("refiner_temb"), m.context_embedder.conditioning(in.load("encoder_hidden_states"), mask, t), 1e-5,
                    1e-5 + sinusoidRounding("context_embedder.time_text_embed.timestep_embedder."));
            close(dbg.load("context_embedder_out"), m.context_embedder.forward(in.load("encoder_hidden_states"), mask, t), 1e-4);
            close(dbg.load("temb"), m.timeTextEmbed(t, in.load("guidance"), in.load("pooled_projections")), 1e-5,
                    1e-5 + sinusoidRounding("time_text_embed.timestep_embedder.") + sinusoidRounding("time_text_embed.guidance_embedder."));
            close(dbg.load("x_embedder_out"), m.x_embedder.forward(in.load("hidden_states")), 1e-5);
        }
    }

    private static void close(Tensor expected, Tensor actual, double tol) {
        close(expected, actual, tol, tol);
    }

    private static void close(Tensor expected, Tensor actual, double rtol, double atol) {
        assertArrayEquals(Tensors.shape(expected), Tensors.shape(actual));
        assertTrue(allclose(actual, expected.to(actual.scalar_type()), rtol, atol, false),
                "max abs diff " + actual.sub(expected.to(actual.scalar_type())).abs().max().item_float() + " (atol " + atol
                        + ", rtol " + rtol + ", ATen " + AtenCapability.name() + ")");
    }

    /**
     * What {@code linear_2(SiLU(linear_1(e)))} of the float32 sinusoid {@code e = [cos(x·f_k), sin(x·f_k)]},
     * {@code f_k = exp(-ln(1e4)·k/128)}, may differ by from the reference when ATen's sin/cos are not the ones it ran.
     * Under AVX2/AVX512 they are the same Sleef functions: 0. Under DEFAULT they are the C library's, each within an ulp
     * but not always the same ulp: |Δe_k| ≤ 2^-22. The frequencies f_k, and so the phases x·f_k, are the reference's
     * bit for bit under every capability ({@code VectorizedExp}; with the C library's exp one ulp of f_k became
     * x·ulp(f_k), ~3.6e-4 at x = 6000, in the phase), and through the weights (SiLU is 1.1-Lipschitz)
     * |Δout_i| ≤ Σ_j |W2_ij|·1.1·Σ_k |W1_jk|·|Δe_k|.
     */
    private static double sinusoidRounding(String embedder) {
        if (AtenCapability.vectorisedX86()) return 0;
        try (SafetensorsFile w = SafetensorsFile.open(tinyModel().resolve("diffusion_pytorch_model.safetensors"));
             PointerScope scope = new PointerScope()) {
            Tensor w1 = w.load(embedder + "linear_1.weight"), w2 = w.load(embedder + "linear_2.weight");
            int hidden = (int) w1.size(0), in = (int) w1.size(1), half = in / 2, out = (int) w2.size(0);
            float[] a = Tensors.toFloats(w1), b = Tensors.toFloats(w2);
            double[] de = new double[half];
            java.util.Arrays.fill(de, 0x1p-22);
            double[] dh = new double[hidden];
            for (int j = 0; j < hidden; j++) {
                for (int k = 0; k < half; k++) dh[j] += (Math.abs(a[j * in + k]) + Math.abs(a[j * in + half + k])) * de[k];
            }
            double bound = 0;
            for (int i = 0; i < out; i++) {
                double s = 0;
                for (int j = 0; j < hidden; j++) s += Math.abs(b[i * hidden + j]) * 1.1 * dh[j];
                bound = Math.max(bound, s);
            }
            return bound;
        }
    }

    @Test
    void originalCheckpointLayoutGivesIdenticalOutputs() {
        Path original = tmp.resolve("hunyuan-video-tiny-original.safetensors");
        try (PointerScope scope = new PointerScope()) {
            Map<String, Tensor> diffusers = new LinkedHashMap<>();
            try (SafetensorsFile f = SafetensorsFile.open(tinyModel().resolve("diffusion_pytorch_model.safetensors"))) {
                for (String k : f.keys()) diffusers.put(k, f.load(k));
            }
            Map<String, Tensor> converted = HunyuanVideoKeyMap.toOriginal(diffusers);
            assertTrue(converted.containsKey("double_blocks.0.img_attn_qkv.weight"));
            assertTrue(converted.containsKey("single_blocks.1.linear1.weight"));
            assertTrue(converted.containsKey("txt_in.individual_token_refiner.blocks.0.self_attn_qkv.bias"));
            assertTrue(converted.containsKey("final_layer.adaLN_modulation.1.weight"));
            assertFalse(converted.keySet().stream().anyMatch(k -> k.startsWith("transformer_blocks.") || k.startsWith("context_embedder.")),
                    "every diffusers name is mapped: " + converted.keySet());
            SafetensorsWriter.write(original, converted);
        }
        try (HunyuanVideoTransformer fromDiffusers = HunyuanVideoTransformer.load(tinyModel(), DType.F32);
             HunyuanVideoTransformer fromOriginal = HunyuanVideoTransformer.load(original, DType.F32, DeviceSpec.CPU, new int[] {4, 6, 6});
             SafetensorsFile in = SafetensorsFile.open(caseDir("tiny_modg_w3_s1").resolve("inputs.safetensors"));
             PointerScope scope = new PointerScope()) {
            assertEquals(fromDiffusers.config(), fromOriginal.config(), "config detected from the original weights");
            for (boolean guided : new boolean[] {false, true}) {
                try (ModulationGuidance ga = guidance(fromDiffusers, in, guided ? 3.0 : 0.0);
                     ModulationGuidance gb = guidance(fromOriginal, in, guided ? 3.0 : 0.0)) {
                    Tensor a = forward(fromDiffusers, in, ga);
                    Tensor b = forward(fromOriginal, in, gb);
                    assertTrue(equal(a, b), "original and diffusers layouts must give bit-identical outputs (guided=" + guided + ")");
                }
            }
        }
    }

    @Test
    void zeroGuidanceWeightIsBitIdenticalToThePlainForward() {
        try (HunyuanVideoTransformer m = HunyuanVideoTransformer.load(tinyModel(), DType.F32);
             SafetensorsFile in = SafetensorsFile.open(caseDir("tiny_modg_w0_s0").resolve("inputs.safetensors"));
             PointerScope scope = new PointerScope()) {
            Tensor plain = forward(m, in, ModulationGuidance.none());
            try (ModulationGuidance zero = guidance(m, in, 0.0); ModulationGuidance three = guidance(m, in, 3.0)) {
                assertTrue(equal(plain, forward(m, in, zero)), "w = 0 must not change a single bit");
                assertFalse(equal(plain, forward(m, in, three)), "w = 3 must change the output");
            }
        }
    }

    @Test
    void shippedConfigMatchesTheReleasedModel() {
        HunyuanVideoConfig c = HunyuanVideoConfig.hunyuanVideo();
        assertEquals(3072, c.innerDim());
        assertEquals(60, c.totalBlocks());
        assertEquals(12288, c.mlpHidden());
        assertEquals(64, c.patchValues());
        assertTrue(c.guidanceEmbeds());
        assertArrayEquals(new int[] {16, 56, 56}, c.ropeAxesDim());
    }

    static ModulationGuidance guidance(HunyuanVideoTransformer m, SafetensorsFile in, double w) {
        return ModulationGuidance.builder().term(m.guidanceDelta(in.load("pooled_pos"), in.load("pooled_neg")), w, LayerSchedule.from(1)).build();
    }

    static Tensor forward(HunyuanVideoTransformer m, SafetensorsFile in, ModulationGuidance g) {
        return m.forward(in.load("hidden_states"), in.load("timestep"), in.load("encoder_hidden_states"), in.load("encoder_attention_mask"),
                in.load("pooled_projections"), in.load("guidance"), g, 0);
    }
}
