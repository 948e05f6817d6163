package io.mmdit4j.pipeline;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.mmdit4j.GoldenData;
import io.mmdit4j.guidance.CfgRows;
import io.mmdit4j.guidance.Direction;
import io.mmdit4j.guidance.GuidanceDefaults;
import io.mmdit4j.guidance.LayerSchedule;
import io.mmdit4j.guidance.NormControl;
import io.mmdit4j.guidance.Preset;
import io.mmdit4j.guidance.StepWindow;
import io.mmdit4j.models.ModelRegistry;
import io.mmdit4j.runtime.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The generation API without generating: model discovery, defaults, the one rule for guidance, options, the settings record. */
class GenerationApiTest {

    @Test
    void aRequestLeavesOpenWhatTheModelsDescriptorFills() {
        PreparedModel demo = Pipelines.prepare("flux-tiny-demo", LoadOptions.defaults());
        assertEquals("flux", demo.family().name());
        assertEquals(5, demo.numGuidedBlocks());
        GenerationSettings s = demo.resolve(GenerationRequest.builder().prompt("a wolf").guide(Direction.preset("aesthetics")).build());
        assertEquals(256, s.width());
        assertEquals(256, s.height());
        assertEquals(4, s.steps());
        assertEquals(64, s.maxSequenceLength());
        assertEquals(DType.F32, s.dtype());
        assertEquals(3.5, s.option(EmbeddedGuidance.class).scale(), "the descriptor's embedded guidance");
        assertArrayEquals(new long[] {0}, s.seeds(), "no seed: image i gets seed i");
        Direction d = s.guidance().get(0);
        assertEquals(3.0, d.w());
        assertEquals(LayerSchedule.parse("1-"), d.layers(), "the demo's recommendation, not FLUX's 5- (the demo has 5 blocks)");
        assertEquals("Ultra-detailed, photorealistic, cinematic", d.pos());
        assertEquals(StepWindow.all(), d.steps());
        assertEquals(CfgRows.BOTH, d.rows());
    }

    @Test
    void explicitValuesBeatPresetsWhichBeatTheRecommendation() {
        GuidanceDefaults model = GuidanceDefaults.of(2.0, "2-");
        Direction hands = model.resolve(Direction.preset("hands"));
        assertEquals(1.0, hands.w(), "the paper's hands preset has its own weight");
        assertEquals(LayerSchedule.parse("13-30:3,31-45:1"), hands.layers());
        Direction aesthetics = model.resolve(Direction.preset("aesthetics"));
        assertEquals(2.0, aesthetics.w(), "no preset weight: the model's recommendation");
        assertEquals("2-", aesthetics.layers().toString());
        assertEquals(5.0, model.resolve(Direction.preset("hands").w(5)).w(), "explicit beats the preset");
        Direction custom = model.resolve(Direction.of("sharp", "blurry"));
        assertEquals("custom", custom.label());
        assertEquals(2.0, custom.w());
        GuidanceDefaults own = model.withPresets(List.of(new Preset("hands", "five fingers", "extra fingers", 0.5, LayerSchedule.parse("3-"))));
        Direction ownHands = own.resolve(Direction.preset("hands"));
        assertEquals("five fingers", ownHands.pos(), "a model's own preset replaces the paper's of that name");
        assertEquals(0.5, ownHands.w());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> model.resolve(Direction.preset("sharpness")));
        assertTrue(e.getMessage().contains("sharpness") && e.getMessage().contains("aesthetics"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Direction.of("a", "b").w(Double.NaN));
    }

    @Test
    void optionsAFamilyDoesNotTakeAreRefusedWithTheirFlags() {
        PreparedModel demo = Pipelines.prepare("flux-tiny-demo", LoadOptions.defaults());
        UnsupportedOptionException e = assertThrows(UnsupportedOptionException.class,
                () -> demo.resolve(GenerationRequest.builder().prompt("x").cfg(4.0).build()));
        assertTrue(e.getMessage().contains("--cfg") && e.getMessage().contains("flux") && e.getMessage().contains("--guidance"), e.getMessage());
        e = assertThrows(UnsupportedOptionException.class, () -> demo.resolve(GenerationRequest.builder().prompt("x").frames(9).build()));
        assertTrue(e.getMessage().contains("--frames"), e.getMessage());
        PreparedModel schnell = Pipelines.prepare(GoldenData.root().resolve("flux_pipeline/models/flux-tiny-schnell").toString(), LoadOptions.defaults());
        assertNull(schnell.resolve(GenerationRequest.builder().prompt("x").build()).option(EmbeddedGuidance.class),
                "schnell has no guidance embedding: the family's default is dropped, not passed");
        assertThrows(UnsupportedOptionException.class, () -> schnell.resolve(GenerationRequest.builder().prompt("x").guidanceScale(3.5).build()));
    }

    @Test
    void unknownModelsAndFoldersAreClearErrors(@TempDir Path empty) {
        UnknownModelException e = assertThrows(UnknownModelException.class, () -> Pipelines.prepare("no-such-model", LoadOptions.defaults()));
        assertTrue(e.getMessage().contains("no-such-model") && e.getMessage().contains("flux-tiny-demo"), e.getMessage());
        e = assertThrows(UnknownModelException.class, () -> Pipelines.prepare(empty.toString(), LoadOptions.defaults()));
        assertTrue(e.getMessage().contains("model_index.json"), e.getMessage());
        assertTrue(e instanceof IllegalArgumentException, "API errors are IllegalArgumentExceptions");
    }

    @Test
    void theBundledDescriptorsResolveWithoutACheckout(@TempDir Path cache) {
        ModelRegistry bundled = new ModelRegistry(null, null, cache);
        assertTrue(bundled.descriptors().stream().anyMatch(d -> d.name().equals("flux1-schnell")));
        Path demo = bundled.resolve("flux-tiny-demo");
        assertTrue(demo.startsWith(cache), demo.toString());
        assertTrue(demo.resolve("tokenizer/vocab.json").toFile().isFile(), demo + ": the bundled tokenizer files");
        PreparedModel m = Pipelines.prepare("flux-tiny-demo", LoadOptions.builder().registry(bundled).build());
        assertEquals(demo, m.path());
    }

    @Test
    void aRecordedImageReadsBackToTheSameSettings() {
        PreparedModel demo = Pipelines.prepare("flux-tiny-demo", LoadOptions.defaults());
        GenerationSettings s = demo.resolve(GenerationRequest.builder().prompt("a").prompt("b").imagesPerPrompt(2).seed(-1L).steps(2)
                .normControl(NormControl.KEEP_TEMB_NORM).guide(Direction.preset("aesthetics").rowWeights(0, 1, 2, 0)).build());
        assertEquals(Long.toUnsignedString(-1L), s.metadata(0).get("seed"), "seeds are PyTorch's unsigned 64-bit");
        assertEquals(0L, s.seed(1), "seed + i wraps modulo 2^64");
        GenerationSettings image2 = s.forImage(2);
        assertEquals(List.of("b"), image2.prompts());
        assertEquals(6.0, image2.guidance().get(0).w(), "the row weight folds into w");
        assertTrue(s.forImage(0).guidance().isEmpty(), "a zero row weight: unguided");
        GenerationSettings.Recorded r = GenerationSettings.read(image2.toJson(), "test");
        assertEquals("flux-tiny-demo", r.model());
        assertEquals(image2, demo.resolve(r.request()), "reading the record back resolves to the same settings");
    }

    @Test
    void recordsAreReadStrictly() {
        ObjectMapper json = new ObjectMapper();
        Map<String, String> bad = Map.of(
                "{\"prompts\": [\"a\"], \"seed\": \"hello\"}", "'seed'",
                "{\"prompts\": [\"a\"], \"width\": 256.9, \"height\": 256}", "'width'",
                "{\"prompts\": [\"a\"], \"steps\": 1e308}", "'steps'",
                "{\"prompts\": [\"a\"], \"guidance_scale\": -1e308}", "embedded guidance scale",
                "{\"prompts\": [\"a\"], \"loras\": \"x\"}", "'loras'",
                "{\"prompts\": [\"a\"], \"modulation_guidance\": [{\"pos\": \"p\", \"neg\": \"n\", \"w\": \"lots\"}]}", "'w'",
                "{\"prompts\": [\"a\"], \"seed\": -1}", "0..2^64-1",
                "{\"seed\": 1}", "no prompts");
        bad.forEach((text, expected) -> {
            InvalidRequestException e = assertThrows(InvalidRequestException.class, () -> GenerationSettings.read(json.readTree(text), "x.png"), text);
            assertTrue(e.getMessage().startsWith("x.png") && e.getMessage().contains(expected), text + " -> " + e.getMessage());
        });
        ObjectNode legacy = (ObjectNode) assertDoesNotThrowRead("{\"prompts\": [\"a\"], \"family\": \"sd3\", \"guidance_scale\": 4.5, \"cfg\": true}");
        GenerationSettings.Recorded r = GenerationSettings.read(legacy, "old.png");
        assertEquals(4.5, r.request().option(ClassifierFreeGuidance.class).scale(), "SD3 records before cfg_scale");
        assertNull(r.request().option(EmbeddedGuidance.class));
    }

    private static Object assertDoesNotThrowRead(String text) {
        try {
            return new ObjectMapper().readTree(text);
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    @Test
    void requestsRejectImpossibleValuesAtOnce() {
        assertThrows(InvalidRequestException.class, () -> GenerationRequest.builder().build(), "no prompt");
        assertThrows(InvalidRequestException.class, () -> GenerationRequest.builder().prompt("x").width(100).build());
        assertThrows(InvalidRequestException.class, () -> GenerationRequest.builder().prompt("x").size(100_000, 16).build());
        assertThrows(InvalidRequestException.class, () -> GenerationRequest.builder().prompt("x").steps(1_000_000_000).build());
        assertThrows(InvalidRequestException.class, () -> GenerationRequest.builder().prompt("x").imagesPerPrompt(5000).build());
        assertThrows(InvalidRequestException.class, () -> GenerationRequest.builder().prompt("x").seeds(1, 2).build(), "2 seeds for 1 image");
        assertThrows(InvalidRequestException.class, () -> GenerationRequest.builder().prompt("x").guide(Direction.of("a", "b").rowWeights(1, 0)).build());
        assertThrows(IllegalArgumentException.class, () -> GenerationRequest.builder().prompt("x").guidanceScale(1e308));
        assertThrows(IllegalArgumentException.class, () -> CustomSigmas.of(1.0, 2.0));
        assertFalse(GenerationRequest.builder().prompt("x").build().seedsPerImage().length == 0);
    }
}
