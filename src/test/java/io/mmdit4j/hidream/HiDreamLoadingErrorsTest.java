package io.mmdit4j.hidream;

import io.mmdit4j.GoldenData;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.models.Families;
import io.mmdit4j.pipeline.GenerationRequest;
import io.mmdit4j.pipeline.LoadOptions;
import io.mmdit4j.pipeline.Pipeline;
import io.mmdit4j.pipeline.Pipelines;
import io.mmdit4j.pipeline.PreparedModel;
import io.mmdit4j.pipeline.SampleSize;
import io.mmdit4j.pipeline.UnsupportedOptionException;
import io.mmdit4j.runtime.DType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.Comparator;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Bad HiDream input gives one clear error before any weights load: no Llama text encoder, a config whose llama_layers
 * does not fit the blocks, a Llama with fewer hidden states than llama_layers reads, a folder of another family,
 * options the family does not take.
 */
class HiDreamLoadingErrorsTest {
    @TempDir
    static Path home;
    private static Path demo;

    @BeforeAll
    static void write() throws IOException {
        demo = HiDreamDemo.folder(home);
    }

    private static Path copy(String name) throws IOException {
        Path to = home.resolve(name);
        try (Stream<Path> s = Files.walk(demo)) {
            for (Path f : (Iterable<Path>) s::iterator) {
                Path t = to.resolve(demo.relativize(f).toString());
                if (Files.isDirectory(f)) Files.createDirectories(t);
                else Files.copy(f, t);
            }
        }
        return to;
    }

    private static void delete(Path dir) throws IOException {
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path f : (Iterable<Path>) s.sorted(Comparator.reverseOrder())::iterator) Files.delete(f);
        }
    }

    @Test
    void aMissingLlamaEncoderIsNamedBeforeLoading() throws IOException {
        Path m = copy("no-llama");
        delete(m.resolve("text_encoder_4"));
        PreparedModel p = Pipelines.prepare(m.toString(), LoadOptions.defaults());
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> p.resolve(GenerationRequest.builder().prompt("a").build()));
        assertTrue(e.getMessage().contains("Llama-3.1-8B-Instruct") && e.getMessage().contains("--llama DIR"), e.getMessage());
        Path other = home.resolve("elsewhere");
        e = assertThrows(ModelFormatException.class, () -> Pipelines.load(m, LoadOptions.builder().component("text_encoder_4", other).build()));
        assertTrue(e.getMessage().contains("not a Llama text encoder folder"), e.getMessage());
        // the Llama given with --llama, its tokenizer beside it
        Path llama = Files.createDirectories(home.resolve("llama"));
        for (String part : new String[] {"text_encoder_4", "tokenizer_4"}) {
            try (Stream<Path> s = Files.list(demo.resolve(part))) {
                for (Path f : (Iterable<Path>) s::iterator) Files.copy(f, llama.resolve(f.getFileName()));
            }
        }
        assertEquals(5, Pipelines.prepare(m.toString(), LoadOptions.builder().component("text_encoder_4", llama).component("tokenizer_4", llama).build())
                .numGuidedBlocks());
    }

    @Test
    void llamaLayersMustHaveOneEntryPerBlock() throws IOException {
        Path m = copy("bad-layers");
        Path config = m.resolve("transformer/config.json");
        Files.writeString(config, Files.readString(config).replaceAll("\"llama_layers\"\\s*:\\s*\\[[^]]*]", "\"llama_layers\": [0, 1, 2, 2]"));
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> HiDreamTransformer.inspect(m));
        assertTrue(e.getMessage().contains("llama_layers has 4 entries, but the model has 5 blocks"), e.getMessage());
    }

    @Test
    void tooFewLlamaHiddenStatesAreRefused() throws IOException {
        Path m = copy("short-llama");
        Path config = m.resolve("transformer/config.json");
        Files.writeString(config, Files.readString(config).replaceAll("\"llama_layers\"\\s*:\\s*\\[[^]]*]", "\"llama_layers\": [0, 1, 2, 3, 3]"));
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> Pipelines.load(m, LoadOptions.defaults()));
        assertTrue(e.getMessage().contains("the Llama text encoder has 3 layers (hidden states), but the transformer's llama_layers reads state 3"),
                e.getMessage());
        try (HiDreamTransformer t = HiDreamTransformer.load(m, DType.F32); org.bytedeco.javacpp.PointerScope s = new org.bytedeco.javacpp.PointerScope()) {
            IllegalArgumentException f = assertThrows(IllegalArgumentException.class, () -> t.text(
                    org.bytedeco.pytorch.global.torch.zeros(new long[] {1, 4, 8}), org.bytedeco.pytorch.global.torch.zeros(new long[] {3, 1, 4, 24})));
            assertTrue(f.getMessage().contains("holds 3 Llama hidden states, but llama_layers reads state 3"), f.getMessage());
        }
    }

    @Test
    void anotherFamilysFolderIsNotHiDream() {
        Path flux = GoldenData.root().resolve("flux_pipeline/models/flux-tiny-dev");
        assertEquals("flux", Families.detect(null, flux).name());
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> HiDreamFamily.INSTANCE.load(flux, LoadOptions.builder().dtype(DType.F32).build()));
        assertTrue(e.getMessage().contains("HiDreamImagePipeline"), e.getMessage());
        e = assertThrows(ModelFormatException.class, () -> HiDreamTransformer.load(flux.resolve("transformer"), DType.F32));
        assertTrue(e.getMessage().contains(HiDreamConfig.CLASS_NAME), e.getMessage());
        Path sd3 = GoldenData.root().resolve("sd3_transformer/models/sd35m/transformer/diffusion_pytorch_model.safetensors");
        e = assertThrows(ModelFormatException.class, () -> HiDreamTransformer.load(sd3, DType.F32));
        assertTrue(e.getMessage().contains("not a HiDream transformer checkpoint"), e.getMessage());
    }

    @Test
    void componentsAreRefusedByOtherFamilies() { // --offload text is every family's now (OffloadTextTest)
        Path flux = GoldenData.root().resolve("flux_pipeline/models/flux-tiny-dev");
        UnsupportedOptionException e = assertThrows(UnsupportedOptionException.class,
                () -> Pipelines.prepare(flux.toString(), LoadOptions.builder().component("text_encoder_4", flux).build()).load());
        assertTrue(e.getMessage().contains("component 'text_encoder_4'"), e.getMessage());
    }

    /**
     * Offloaded parts load again for each use, during generations: in the model's loading scope, so a checkpoint changed
     * since it was first opened fails the generation (before any forward reads a page of it) instead of feeding it new
     * weights, whether the weights are mapped or read into memory (--no-mmap).
     */
    @Test
    void offloadedPartsThatChangedOnDiskFailTheNextGeneration() throws IOException {
        for (boolean mapped : new boolean[] {true, false}) {
            Path m = copy("offload-changes-" + mapped);
            try (Pipeline p = Pipelines.load(m, LoadOptions.builder().offloadText(true).memoryMapped(mapped).build())) {
                GenerationRequest r = GenerationRequest.builder().prompt("a fox").seed(1).steps(1).size(64, 64).option(new SampleSize(64)).cfg(1.0)
                        .maxSequenceLength(16).build(); // a folder without a descriptor: the family's 1024² defaults otherwise
                p.generate(r).close();
                Path weights = m.resolve("transformer/diffusion_pytorch_model.safetensors");
                Files.setLastModifiedTime(weights, FileTime.fromMillis(Files.getLastModifiedTime(weights).toMillis() - 60_000));
                ModelFormatException e = assertThrows(ModelFormatException.class, () -> p.generate(r).close(), "mapped " + mapped);
                assertTrue(e.getMessage().contains("diffusion_pytorch_model.safetensors") && e.getMessage().contains("changed on disk"), e.getMessage());
            }
        }
    }
}
