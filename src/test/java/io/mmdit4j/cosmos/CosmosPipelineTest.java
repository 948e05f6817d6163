package io.mmdit4j.cosmos;

import io.mmdit4j.GoldenData;
import io.mmdit4j.guidance.CfgRows;
import io.mmdit4j.guidance.Direction;
import io.mmdit4j.guidance.GuidanceTerm;
import io.mmdit4j.guidance.LayerSchedule;
import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.guidance.StepWindow;
import io.mmdit4j.io.SafetensorsFile;
import io.mmdit4j.pipeline.GenerationRequest;
import io.mmdit4j.pipeline.GenerationResult;
import io.mmdit4j.pipeline.GenerationSettings;
import io.mmdit4j.pipeline.InvalidRequestException;
import io.mmdit4j.pipeline.LoadOptions;
import io.mmdit4j.pipeline.MemoryEstimate;
import io.mmdit4j.pipeline.Pipeline;
import io.mmdit4j.pipeline.Pipelines;
import io.mmdit4j.pipeline.PreparedModel;
import io.mmdit4j.pipeline.UnsupportedOptionException;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.ProcessMemory;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.sampling.DenoisedEulerSampler;
import io.mmdit4j.sampling.KarrasSchedule;
import io.mmdit4j.sampling.Schedule;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;

import static org.bytedeco.pytorch.global.torch.equal;
import static org.bytedeco.pytorch.global.torch.randn;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The COSMOS sampler and pipeline: Karras sigmas, the x0 Euler step, the guidance rules through the pipeline, the demo model, RSS. */
class CosmosPipelineTest {
    private static final Path GOLDEN = GoldenData.root().resolve("cosmos_pipeline");

    @Test
    void karrasSigmasAreTheGoldenOnesBitForBit() {
        try (SafetensorsFile out = SafetensorsFile.open(GOLDEN.resolve("cases/cfg7_w3_s1_35steps/outputs.safetensors"));
             PointerScope scope = new PointerScope()) {
            Schedule s = KarrasSchedule.of(35, 0.002, 80.0, 7.0, 1000);
            assertArrayEquals(Tensors.toFloats(out.load("sigmas")), s.sigmas());
            assertArrayEquals(Tensors.toFloats(out.load("timesteps")), s.timesteps());
            assertEquals(80f, s.sigma(0));
            assertEquals(0f, s.sigma(35), "the reference keeps the terminal 0");
        }
    }

    @Test
    void theX0EulerStepEndsOnTheDenoisedPrediction() {
        Schedule s = KarrasSchedule.of(3, 0.002, 80.0, 7.0, 1000);
        DenoisedEulerSampler sampler = new DenoisedEulerSampler(s);
        try (PointerScope scope = new PointerScope()) {
            Tensor x = randn(2, 3), x0 = randn(2, 3);
            float[] a = Tensors.toFloats(x), b = Tensors.toFloats(x0), next = Tensors.toFloats(sampler.step(x0, 0, x));
            for (int i = 0; i < a.length; i++) {
                float sigma = s.sigma(0), d = (a[i] - b[i]) / sigma;
                assertEquals(a[i] + (s.sigma(1) - sigma) * d, next[i], 0f, "x + (σ1 − σ0)·(x − x0)/σ0 in float32");
            }
            float[] last = Tensors.toFloats(sampler.step(x0, 2, x));
            for (int i = 0; i < a.length; i++) assertEquals(b[i], last[i], 1e-6f * Math.max(1, Math.abs(a[i])), "σ_N = 0: the last step returns x0");
        }
    }

    @Test
    void theDemoGeneratesWithGuidanceAndZeroWeightIsBitIdenticalToNone() {
        try (Pipeline p = Pipelines.load("cosmos-tiny-demo")) {
            assertEquals("cosmos", p.family().name());
            GenerationRequest.Builder base = GenerationRequest.builder().prompt("a red fox").size(64, 48).steps(3).seed(7).maxSequenceLength(16);
            GenerationSettings plain = p.resolve(base.build());
            assertEquals(7.0, plain.option(io.mmdit4j.pipeline.ClassifierFreeGuidance.class).scale(), "CFG 7 by default");
            assertEquals("karras_x0_euler", plain.sampler());
            GenerationSettings zero = p.resolve(base.guide(Direction.preset("aesthetics").w(0)).build());
            GenerationSettings guided = p.resolve(GenerationRequest.builder().prompt("a red fox").size(64, 48).steps(3).seed(7).maxSequenceLength(16)
                    .guide(Direction.preset("aesthetics")).build());
            Direction d = guided.guidance().get(0);
            assertEquals(3.0, d.w());
            assertEquals(LayerSchedule.parse("0-"), d.layers(), "the paper's COSMOS schedule: from block 0");
            assertEquals(CfgRows.COND, d.rows(), "only the conditional pass is guided");
            try (GenerationResult a = p.generate(plain, null, null); GenerationResult b = p.generate(zero, null, null);
                 GenerationResult c = p.generate(guided, null, null)) {
                assertArrayEquals(new long[] {1, 3, 48, 64}, Tensors.shape(a.images()));
                assertTrue(equal(a.latents(), b.latents()), "w = 0 is bit-identical to no guidance (the pooled term stays in every block)");
                assertFalse(equal(a.latents(), c.latents()), "w = 3 changes the image");
                float[] px = Tensors.toFloats(a.images());
                for (float v : px) assertTrue(v >= 0 && v <= 1);
            }
        }
    }

    @Test
    void theUnconditionalPassLosesThePooledTermBelowTheStartLayerToo() {
        // with guidance from block 2 on the conditional pass only, the unconditional pass must differ from an unguided run's
        try (CosmosTransformer t = CosmosTransformer.load(GOLDEN.resolve("models/tiny/transformer"), GOLDEN.resolve("models/tiny/pooled_adapter.safetensors"),
                DType.F32, DeviceSpec.CPU); PointerScope scope = new PointerScope()) {
            Tensor x = randn(1, 16, 1, 4, 6), ts = randn(1).abs(), text = randn(1, 5, 32), pooled = randn(1, 32);
            Tensor delta = t.guidanceDelta(randn(1, 32), randn(1, 32));
            try (ModulationGuidance cfgPlan = ModulationGuidance.builder()
                    .add(new GuidanceTerm("g", delta, 3.0, LayerSchedule.from(2), StepWindow.all(), new double[] {0, 1})).build();
                 ModulationGuidance uncond = cfgPlan.rows(0, 1); ModulationGuidance cond = cfgPlan.rows(1, 1)) {
                boolean[][] blocks = CosmosTransformer.pooledBlocks(cond, 0, 1, 3);
                assertArrayEquals(new boolean[] {false}, blocks[0]);
                assertArrayEquals(new boolean[] {false}, blocks[1]);
                assertArrayEquals(new boolean[] {true}, blocks[2]);
                assertArrayEquals(new boolean[] {true}, CosmosTransformer.pooledBlocks(uncond, 0, 1, 3)[0], "alone, an unguided row takes it everywhere");
                Tensor plain = t.forward(x, ts, text, null, pooled, ModulationGuidance.none(), 0, null, null);
                Tensor following = t.forward(x, ts, text, null, pooled, uncond, 0, blocks, null);
                Tensor own = t.forward(x, ts, text, null, pooled, uncond, 0, null, null);
                assertTrue(equal(plain, own));
                assertFalse(equal(plain, following));
                // outside the step window the conditional row is unguided: every block takes the pooled term again
                try (ModulationGuidance early = ModulationGuidance.builder()
                        .add(new GuidanceTerm("g", Tensors.keep(delta.clone()), 3.0, LayerSchedule.from(2), StepWindow.parse("0-1"), null)).build()) {
                    assertArrayEquals(new boolean[] {false}, CosmosTransformer.pooledBlocks(early, 1, 1, 3)[0]);
                    assertArrayEquals(new boolean[] {true}, CosmosTransformer.pooledBlocks(early, 2, 1, 3)[0]);
                }
            }
        }
    }

    @Test
    void badRequestsAreRefusedBeforeAnyWork() {
        PreparedModel m = Pipelines.prepare("cosmos-tiny-demo", LoadOptions.defaults());
        InvalidRequestException e = assertThrows(InvalidRequestException.class,
                () -> m.resolve(GenerationRequest.builder().prompt("x").size(72, 64).build()));
        assertTrue(e.getMessage().contains("multiples of 16"), e.getMessage());
        UnsupportedOptionException u = assertThrows(UnsupportedOptionException.class,
                () -> m.resolve(GenerationRequest.builder().prompt("x").guidanceScale(3.5).build()));
        assertTrue(u.getMessage().contains("cosmos"), u.getMessage());
        UnsupportedOptionException a = assertThrows(UnsupportedOptionException.class, () -> Pipelines.prepare("flux-tiny-demo",
                LoadOptions.builder().adapter(GOLDEN.resolve("models/tiny/pooled_adapter.safetensors")).build()).load());
        assertTrue(a.getMessage().contains("--adapter") && a.getMessage().contains("flux"), a.getMessage());
    }

    /** Every record names the adapter the pipeline was loaded with; a replay of it reads it back; another adapter is refused. */
    @Test
    void recordsNameTheLoadedAdapterAndAnotherIsRefused() {
        Path adapter;
        try (Pipeline p = Pipelines.load("cosmos-tiny-demo")) { // the adapter the loader finds in the model folder
            io.mmdit4j.pipeline.PooledAdapterFile found = p.resolve(GenerationRequest.builder().prompt("x").size(32, 32).build())
                    .option(io.mmdit4j.pipeline.PooledAdapterFile.class);
            assertTrue(found != null && java.nio.file.Files.isRegularFile(found.file()), "the record names the adapter found: " + found);
            adapter = found.file();
        }
        try (Pipeline p = Pipelines.load("cosmos-tiny-demo", LoadOptions.builder().adapter(adapter).build())) {
            GenerationSettings s = p.resolve(GenerationRequest.builder().prompt("a red bicycle").size(32, 32).steps(2).build());
            io.mmdit4j.pipeline.PooledAdapterFile recorded = s.option(io.mmdit4j.pipeline.PooledAdapterFile.class);
            assertTrue(recorded != null && recorded.sameFile(adapter), "the record names " + recorded);
            assertEquals(adapter.toString(), s.toJson().get("pooled_adapter").asText());
            GenerationSettings.Recorded replay = GenerationSettings.read(s.toJson(), "record");
            assertEquals(s, p.resolve(replay.request()).withModel(s.model()), "the replayed request resolves to the same settings");
            InvalidRequestException e = assertThrows(InvalidRequestException.class, () -> p.resolve(GenerationRequest.builder().prompt("x")
                    .size(32, 32).option(new io.mmdit4j.pipeline.PooledAdapterFile(Path.of("other_adapter.safetensors"))).build()));
            assertTrue(e.getMessage().contains("other_adapter.safetensors") && e.getMessage().contains("--adapter"), e.getMessage());
        }
    }

    /**
     * The memory plan counts the transformer's and the Wan VAE's activations (not only the decoded pixels) and, of a folder
     * given for the CLIP-L (FLUX.1-schnell's), only its text encoder.
     */
    @Test
    void theMemoryPlanCountsActivationsAndOnlyTheClipOfAnotherFolder() {
        PreparedModel m = Pipelines.prepare("cosmos-tiny-demo", LoadOptions.defaults());
        GenerationSettings s = m.resolve(GenerationRequest.builder().prompt("a fox").seed(1).build());
        MemoryEstimate e = m.memory(s);
        assertTrue(e.workingBytes() > 2L * 3 * s.width() * s.height() * Float.BYTES, "activations and kept tensors, not only the image: " + e.describe());
        Path flux = io.mmdit4j.models.ModelRegistry.standard().resolve("flux-tiny-demo");
        PreparedModel withFlux = Pipelines.prepare("cosmos-tiny-demo", LoadOptions.builder().textEncoders(flux).build());
        long fluxAll = io.mmdit4j.pipeline.WeightBytes.of(flux, DType.F32), fluxClip = io.mmdit4j.pipeline.WeightBytes.of(flux.resolve("text_encoder"), DType.F32);
        assertTrue(fluxClip > 0 && fluxAll > fluxClip);
        long own = m.memory(s).weightBytes(), ownClip = io.mmdit4j.pipeline.WeightBytes.of(m.path().resolve("text_encoder_2"), DType.F32);
        assertEquals(own - ownClip + fluxClip, withFlux.memory(withFlux.resolve(s.toRequest())).weightBytes(), "the FLUX folder's CLIP-L only");
    }

    @Test
    void theRealModelsDescriptorCarriesThePapersSettings() {
        io.mmdit4j.models.ModelDescriptor d = io.mmdit4j.models.ModelRegistry.standard().descriptor("cosmos-predict2-2b-pooled");
        assertEquals("cosmos", d.family());
        io.mmdit4j.pipeline.GenerationDefaults g = CosmosFamily.INSTANCE.defaults().withDescriptor(d, null);
        assertEquals(768, g.width());
        assertEquals(768, g.height());
        assertEquals(35, g.steps());
        assertEquals(512, g.maxSequenceLength());
        assertEquals(DType.BF16, g.dtype());
        assertEquals(7.0, g.option(io.mmdit4j.pipeline.ClassifierFreeGuidance.class).scale());
        Direction realism = g.guidance().resolve(Direction.preset("realism"));
        assertEquals(3.0, realism.w());
        assertEquals(LayerSchedule.parse("0-"), realism.layers());
        assertEquals(CfgRows.COND, realism.rows());
        assertEquals("Low-res, flat, cartoonish", realism.neg());
        assertEquals("very simple, no details at all", g.guidance().resolve(Direction.preset("complexity")).neg(), "the COSMOS reference's wording");
    }

    @Test
    void generationsKeepRssFlat() {
        try (Pipeline pipe = Pipelines.load("cosmos-tiny-demo")) {
            GenerationRequest r = GenerationRequest.builder().prompt("a cat").prompt("a dog").size(32, 32).steps(2).seed(1).maxSequenceLength(8)
                    .guide(Direction.preset("complexity").w(3).layers(LayerSchedule.from(1))).build();
            // warm-up long enough for the test JVM's G1 to have touched its young regions (it plateaus after ~80 runs of this
            // size; a leak would keep growing: with the serial collector of ./mmdit, 400 runs stay within 4 MB)
            for (int i = 0; i < 80; i++) pipe.generate(r).close();
            long before = ProcessMemory.rssMb();
            for (int i = 0; i < 40; i++) pipe.generate(r).close();
            long growth = ProcessMemory.rssMb() - before;
            System.out.println("COSMOS demo: RSS " + before + " MB before 40 generations, growth " + growth + " MB");
            assertTrue(growth < 40, "RSS grew by " + growth + " MB over 40 generations");
        }
    }
}
