package io.mmdit4j.cosmos;

import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.io.SafetensorsWriter;
import io.mmdit4j.models.ModelRegistry;
import io.mmdit4j.pipeline.GenerationRequest;
import io.mmdit4j.pipeline.GenerationResult;
import io.mmdit4j.pipeline.Pipeline;
import io.mmdit4j.pipeline.Pipelines;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.bytedeco.pytorch.global.torch.equal;
import static org.bytedeco.pytorch.global.torch.randn;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The pooled-adapter recipe on the tiny demo: zero gains leave the base model exact, the loss decreases, checkpoints round-trip and resume. */
class PooledAdapterTrainingTest {
    @TempDir
    static Path tmp;
    static Pipeline pipe;
    static CosmosPipeline cosmos;
    static Path data;

    @BeforeAll
    static void samples() throws IOException {
        pipe = Pipelines.load("cosmos-tiny-demo");
        cosmos = pipe.unwrap(CosmosPipeline.class);
        data = Files.createDirectories(tmp.resolve("data"));
        String[] prompts = {"a red fox", "a lighthouse at dusk", "three apples on a table", "a snowy mountain"};
        for (int i = 0; i < prompts.length; i++) {
            try (GenerationResult r = pipe.generate(GenerationRequest.builder().prompt(prompts[i]).size(32, 32).steps(3).seed(i).maxSequenceLength(16).build());
                 PointerScope scope = new PointerScope()) {
                SafetensorsWriter.write(data.resolve("s" + i + ".safetensors"), Map.of("latents", r.latents().select(0, 0).contiguous()),
                        Map.of("prompt", prompts[i]));
            }
        }
    }

    @AfterAll
    static void close() {
        pipe.close();
    }

    private static PooledAdapterTraining trainer(Path out, int steps, double lr, boolean resume) {
        List<PooledAdapterTraining.Sample> s = PooledAdapterTraining.readSamples(data, null);
        return new PooledAdapterTraining(cosmos.transformer(), cosmos.textEncoders(), s, new PooledAdapterTraining.Settings(steps, 1, lr, 0.01, 3, 3, 16),
                out, resume);
    }

    @Test
    void zeroGainsLeaveTheBaseModelExactly() {
        try (PooledAdapterTraining t = trainer(tmp.resolve("zero"), 1, 1e-3, false); PointerScope scope = new PointerScope()) {
            assertEquals(0f, t.adapter().scales().abs().max().item_float(), "gains start at zero");
            Tensor x = randn(1, 16, 1, 4, 4), ts = randn(1).abs(), text = randn(1, 5, 32), pooled = randn(1, t.adapter().pooledDim());
            CosmosTransformer m = cosmos.transformer();
            PooledClipAdapter own = m.replaceAdapter(null);
            try {
                Tensor base = m.forward(x, ts, text, null);
                m.replaceAdapter(t.adapter());
                Tensor zero = m.forward(x, ts, text, pooled);
                assertTrue(equal(base, zero), "temb + 0·pooled is temb: bit-identical to the base model");
            } finally {
                m.replaceAdapter(own);
            }
        }
    }

    @Test
    void theLossDecreasesAndTheAdapterRoundTripsIntoGenerate() throws IOException {
        Path out = tmp.resolve("run");
        try (PooledAdapterTraining t = trainer(out, 60, 3e-3, false)) {
            double before = t.evaluate(4, 11);
            List<Double> losses = t.run(null);
            double after = t.evaluate(4, 11);
            System.out.printf("pooled adapter, tiny demo: held-out loss %.5f -> %.5f after %d steps%n", before, after, losses.size());
            assertEquals(60, losses.size());
            assertTrue(after < before, "loss " + before + " -> " + after);
            assertFalse(t.adapter().scales().abs().max().item_float() == 0f, "the gains moved");
            Path ckpt = out.resolve("checkpoint_60.safetensors");
            assertTrue(Files.isRegularFile(ckpt) && Files.isRegularFile(out.resolve("optimizer_60.pt")) && Files.isRegularFile(out.resolve("loss.csv")));
            Path demo = ModelRegistry.standard().resolve("cosmos-tiny-demo");
            try (CosmosTransformer loaded = CosmosTransformer.load(demo.resolve("transformer"), ckpt, DType.F32, DeviceSpec.CPU);
                 PointerScope scope = new PointerScope()) {
                assertTrue(equal(loaded.adapter().scales(), t.adapter().scales().detach()), "the saved gains load back bit for bit");
            }
        }
        try (Pipeline withTrained = Pipelines.load("cosmos-tiny-demo", io.mmdit4j.pipeline.LoadOptions.builder().adapter(out.resolve("checkpoint_60.safetensors")).build());
             GenerationResult r = withTrained.generate(GenerationRequest.builder().prompt("a red fox").size(32, 32).steps(2).seed(1).maxSequenceLength(16)
                     .guide(io.mmdit4j.guidance.Direction.preset("aesthetics")).build())) {
            assertArrayEquals(new long[] {1, 3, 32, 32}, Tensors.shape(r.images()));
        }
    }

    @Test
    void aResumedRunEqualsAnUninterruptedOne() throws IOException {
        Path straight = tmp.resolve("straight"), split = tmp.resolve("split");
        try (PooledAdapterTraining t = trainer(straight, 6, 1e-3, false)) {
            t.run(null);
        }
        try (PooledAdapterTraining t = trainer(split, 3, 1e-3, false)) {
            t.run(null);
        }
        try (PooledAdapterTraining t = trainer(split, 6, 1e-3, true)) {
            assertEquals(3, t.step());
            t.run(null);
        }
        try (SafetensorsFile a = SafetensorsFile.open(straight.resolve("checkpoint_6.safetensors"));
             SafetensorsFile b = SafetensorsFile.open(split.resolve("checkpoint_6.safetensors")); PointerScope scope = new PointerScope()) {
            for (String k : a.keys()) assertTrue(equal(a.load(k), b.load(k)), k + ": resumed != uninterrupted");
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> trainer(tmp.resolve("empty"), 3, 1e-3, true));
        assertTrue(e.getMessage().contains("no checkpoint"), e.getMessage());
    }
}
