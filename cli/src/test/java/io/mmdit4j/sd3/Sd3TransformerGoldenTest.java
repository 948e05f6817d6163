package io.mmdit4j.sd3;

import io.mmdit4j.GoldenData;
import io.mmdit4j.golden.CaseResult;
import io.mmdit4j.golden.GoldenCase;
import io.mmdit4j.golden.GoldenRunner;
import io.mmdit4j.golden.Sd3TransformerCases;
import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.io.SafetensorsWriter;
import io.mmdit4j.io.StateDict;
import io.mmdit4j.io.TensorSource;
import io.mmdit4j.io.WeightFiles;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

import static org.bytedeco.pytorch.global.torch.equal;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every sd3_transformer golden case; the original single-file layout gives the same bits as the diffusers folder. */
class Sd3TransformerGoldenTest {
    @TempDir
    Path tmp;

    private static Path model(String variant) {
        return GoldenData.root().resolve("sd3_transformer/models").resolve(variant).resolve("transformer");
    }

    private static Path caseDir(String name) {
        return GoldenData.root().resolve("sd3_transformer/cases").resolve(name);
    }

    private static void assertAllPass(List<CaseResult> results) {
        List<String> failures = results.stream().filter(r -> r.status() != CaseResult.Status.PASS)
                .map(CaseResult::line).collect(Collectors.toList());
        assertTrue(failures.isEmpty(), "golden failures:\n" + String.join("\n", failures));
    }

    @Test
    void allSd3TransformerCasesPassWithinTheirTolerances() {
        List<CaseResult> results = new GoldenRunner().run(List.of(GoldenData.root().resolve("sd3_transformer")), r -> { });
        assertAllPass(results);
        assertEquals(9, results.stream().map(CaseResult::caseName).distinct().count(), "9 cases");
        assertTrue(results.stream().anyMatch(r -> r.output().equals("temb_guided")), "guided cases compare temb_guided");
        assertTrue(results.stream().anyMatch(r -> r.caseName().contains("sd35m")), "the dual-attention variant is covered");
    }

    /** Writes {@code variant}'s weights in the original layout (with the prefix and bundled non-transformer tensors). */
    private Path originalFile(String variant, Sd3Config c) {
        Path f = tmp.resolve(variant + "-original.safetensors");
        try (PointerScope s = new PointerScope()) {
            Map<String, Tensor> original = Sd3Original.fromDiffusers(
                    Sd3Original.readAll(model(variant).resolve("diffusion_pytorch_model.safetensors")), c, Sd3KeyMap.PREFIX);
            // what sd3_medium_incl_clips.safetensors also holds: not part of the transformer, ignored by the loader
            original.put("text_encoders.clip_l.transformer.text_model.final_layer_norm.weight", Tensors.fromFloats(new float[] {1, 2}, 2));
            original.put("first_stage_model.decoder.conv_in.bias", Tensors.fromFloats(new float[] {3}, 1));
            SafetensorsWriter.write(f, original, Map.of("format", "pt"));
        }
        return f;
    }

    @ParameterizedTest
    @ValueSource(strings = {"sd35m_plain", "sd35m_modg_w3_s1", "sd35l_modg_w3_s1"})
    void originalSingleFileGivesBitIdenticalOutputsAndPassesTheCase(String caseName) {
        String variant = caseName.substring(0, caseName.indexOf('_'));
        Sd3Config fromJson = Sd3Config.fromDiffusersConfig(model(variant).resolve("config.json"));
        Path original = originalFile(variant, fromJson);
        Sd3Config detected = Sd3Transformer.inspect(original);
        assertEquals(fromJson.numLayers(), detected.numLayers());
        assertEquals(fromJson, new Sd3Config(fromJson.sampleSize(), detected.patchSize(), detected.inChannels(), detected.outChannels(),
                detected.numLayers(), detected.attentionHeadDim(), detected.numAttentionHeads(), detected.jointAttentionDim(),
                detected.captionProjectionDim(), detected.pooledProjectionDim(), detected.posEmbedMaxSize(), detected.qkNorm(),
                detected.dualAttentionLayers()), "everything but sample_size is detected from the original tensors");

        GoldenCase c = GoldenCase.load(caseDir(caseName));
        try (Sd3Transformer diffusers = Sd3Transformer.load(model(variant), DType.F32);
             Sd3Transformer single = Sd3Transformer.load(original, DType.F32);
             SafetensorsFile in = c.inputs(); PointerScope scope = new PointerScope()) {
            Tensor a = diffusers.forward(in.load("hidden_states"), in.load("encoder_hidden_states"), in.load("pooled_projections"), in.load("timestep"));
            Tensor b = single.forward(in.load("hidden_states"), in.load("encoder_hidden_states"), in.load("pooled_projections"), in.load("timestep"));
            assertTrue(equal(a, b), "original-layout and diffusers outputs must be bit-identical");
            a.close();
            b.close();
            assertAllPass(Sd3TransformerCases.runWith(c, caseName + "[original]", single));
        }
    }

    @Test
    void sd3MediumOriginalLayoutWithoutQkNormsLoadsWithAnExplicitConfig() {
        // SD3 Medium has no q/k norms, so its head width is not in the weights (detection assumes the released 64);
        // the tiny golden model uses 8, so it is built from the mapped tensors with its known config.
        Sd3Config c = Sd3Config.fromDiffusersConfig(model("sd3m").resolve("config.json"));
        Path original = originalFile("sd3m", c);
        GoldenCase gc = GoldenCase.load(caseDir("sd3m_modg_w3_s1"));
        try (TensorSource src = WeightFiles.open(original)) {
            StateDict mapped = Sd3KeyMap.fromOriginal(StateDict.of(src));
            io.mmdit4j.io.ModelFormatException e = org.junit.jupiter.api.Assertions.assertThrows(io.mmdit4j.io.ModelFormatException.class,
                    () -> Sd3Config.detect(mapped));
            assertTrue(e.getMessage().contains("head width 64 does not divide the model width 32"), e.getMessage());
            try (Sd3Transformer m = Sd3Transformer.fromStateDict(mapped, c, DType.F32)) {
                assertAllPass(Sd3TransformerCases.runWith(gc, "sd3m_modg_w3_s1[original]", m));
            }
        }
    }

    @Test
    void bf16ComputeStaysCloseToTheFp32Reference() {
        // no bf16 SD3 golden exists: the bf16 path (fp32 timestep sinusoid and positional table, bf16 everything else)
        // must stay within bf16 rounding of the fp32 reference output
        GoldenCase c = GoldenCase.load(caseDir("sd35m_modg_w3_s1"));
        try (Sd3Transformer m = Sd3Transformer.load(model("sd35m"), DType.BF16);
             SafetensorsFile in = c.inputs(); SafetensorsFile out = c.outputs(); PointerScope scope = new PointerScope();
             io.mmdit4j.guidance.ModulationGuidance g = io.mmdit4j.guidance.ModulationGuidance.builder()
                     .term(m.guidanceDelta(in.load("pooled_pos"), in.load("pooled_neg")), 3.0, io.mmdit4j.guidance.LayerSchedule.from(1)).build()) {
            Tensor sample = m.forward(in.load("hidden_states"), in.load("encoder_hidden_states"), in.load("pooled_projections"),
                    in.load("timestep"), g, 0);
            assertEquals(DType.BF16, Tensors.dtype(sample));
            float[] a = Tensors.toFloats(sample), e = Tensors.toFloats(out.load("sample"));
            double maxErr = 0, maxRef = 0;
            for (int i = 0; i < a.length; i++) {
                maxErr = Math.max(maxErr, Math.abs(a[i] - e[i]));
                maxRef = Math.max(maxRef, Math.abs(e[i]));
            }
            assertTrue(maxErr < 0.03 * maxRef, "bf16 max error " + maxErr + " vs output scale " + maxRef);
            sample.close();
        }
    }

    @Test
    void releasedConfigsMatchModelSpec() {
        Sd3Config l = Sd3Config.sd35Large(), m = Sd3Config.sd35Medium(), s = Sd3Config.sd3Medium();
        assertEquals(2432, l.innerDim());
        assertEquals(38, l.numGuidedBlocks());
        assertTrue(l.qkNorm() && l.dualAttentionLayers().isEmpty());
        assertEquals(1536, m.innerDim());
        assertEquals(384, m.posEmbedMaxSize());
        assertEquals(List.of(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12), m.dualAttentionLayers());
        assertFalse(s.qkNorm());
        assertEquals(192, s.posEmbedMaxSize());
        assertEquals(l, Sd3Config.named("sd3.5-large"));
    }
}
