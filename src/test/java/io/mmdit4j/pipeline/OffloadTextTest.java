package io.mmdit4j.pipeline;

import io.mmdit4j.GoldenData;
import io.mmdit4j.cosmos.CosmosPipeline;
import io.mmdit4j.flux.FluxPipeline;
import io.mmdit4j.guidance.Direction;
import io.mmdit4j.guidance.LayerSchedule;
import io.mmdit4j.hunyuan.HunyuanVideoPipeline;
import io.mmdit4j.hunyuan.TinyHunyuanVideoFolder;
import io.mmdit4j.runtime.Offloadable;
import io.mmdit4j.sd3.Sd3Pipeline;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.function.Function;

import static org.bytedeco.pytorch.global.torch.equal;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code --offload text} ({@link LoadOptions.Builder#offloadText}) for FLUX, SD3, HunyuanVideo and COSMOS: the text encoders
 * are closed (their weights released) once a request's prompts and guidance directions are encoded, the next request loads
 * them again from the files (the documented choice: it re-loads, it does not fail), and the results equal those of a
 * pipeline that keeps them, bit for bit.
 */
class OffloadTextTest {
    private static final LoadOptions OFFLOAD = LoadOptions.builder().offloadText(true).build();

    private static void releasedAfterEachRequest(Object model, GenerationRequest r, Function<Pipeline, Offloadable<?>> part) {
        try (Pipeline kept = load(model, LoadOptions.defaults()); Pipeline offloaded = load(model, OFFLOAD)) {
            Offloadable<?> text = part.apply(offloaded);
            assertTrue(part.apply(kept).isResident());
            assertFalse(text.isResident());
            assertEquals(1, text.loads(), "loaded once to check the widths against the transformer");
            for (int request = 1; request <= 2; request++) {
                try (GenerationResult a = kept.generate(r); GenerationResult b = offloaded.generate(r)) {
                    assertTrue(equal(a.latents(), b.latents()), model + " request " + request + ": latents bit for bit");
                    assertTrue(equal(a.isVideo() ? a.frames() : a.images(), b.isVideo() ? b.frames() : b.images()), "outputs bit for bit");
                }
                assertFalse(text.isLoaded(), model + ": the text encoders are released after request " + request);
                assertEquals(request, text.loads(), model + ": request " + request + " loaded them (again)");
            }
            assertTrue(part.apply(kept).isLoaded());
            assertEquals(1, part.apply(kept).loads());
        }
    }

    private static Pipeline load(Object model, LoadOptions o) {
        return model instanceof Path p ? Pipelines.load(p, o) : Pipelines.load((String) model, o);
    }

    @Test
    void flux() {
        releasedAfterEachRequest("flux-tiny-demo", GenerationRequest.builder().prompt("a wolf").size(64, 48).steps(2).seed(1)
                .guidanceScale(3.5).guide(Direction.preset("aesthetics").w(2).layers("1-")).build(),
                p -> p.unwrap(FluxPipeline.class).textEncodersPart());
    }

    @Test
    void sd3() {
        releasedAfterEachRequest(GoldenData.root().resolve("sd3_pipeline/models/sd35-tiny-large"), GenerationRequest.builder().prompt("a cat")
                .size(64, 48).steps(2).seed(3).maxSequenceLength(16).cfg(4.5, List.of("blurry"))
                .guide(Direction.of("vivid colors", "washed out").w(2.0).layers(LayerSchedule.from(1))).build(),
                p -> p.unwrap(Sd3Pipeline.class).textEncodersPart());
    }

    @Test
    void hunyuanVideo(@TempDir Path tmp) throws IOException {
        releasedAfterEachRequest(TinyHunyuanVideoFolder.write(tmp.resolve("hv")), GenerationRequest.builder().prompt("a cat walks").size(32, 32)
                .frames(5).steps(2).guidanceScale(6.0).seed(1).maxSequenceLength(8).build(),
                p -> p.unwrap(HunyuanVideoPipeline.class).textEncodersPart());
    }

    @Test
    void cosmos() {
        releasedAfterEachRequest("cosmos-tiny-demo", GenerationRequest.builder().prompt("a red bicycle").size(64, 64).steps(2).seed(2)
                .cfg(4.0, List.of("")).guide(Direction.preset("aesthetics")).build(),
                p -> p.unwrap(CosmosPipeline.class).textEncodersPart());
    }

    @Test
    void reloadingTheTextEncodersLeavesNoMoreNativeObjectsThanKeepingThem() {
        GenerationRequest r = GenerationRequest.builder().prompt("a wolf").size(32, 32).steps(1).seed(1).build();
        try (Pipeline kept = Pipelines.load("flux-tiny-demo", LoadOptions.defaults()); Pipeline offloaded = Pipelines.load("flux-tiny-demo", OFFLOAD)) {
            long reloading = NativeObjects.perRun(() -> offloaded.generate(r).close());
            long keeping = NativeObjects.perRun(() -> kept.generate(r).close());
            assertEquals(14, offloaded.unwrap(FluxPipeline.class).textEncodersPart().loads(), "one load per request (the first uses the load's own)");
            assertTrue(reloading <= keeping, "native objects left per generation (median): reloading the text encoders " + reloading + ", keeping them "
                    + keeping + " (each release must close every weight of CLIP and T5)");
        }
    }
}
