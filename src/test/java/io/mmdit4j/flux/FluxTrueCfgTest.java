package io.mmdit4j.flux;

import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.pipeline.TrueCfg;
import io.mmdit4j.pipeline.GenerationRequest;
import io.mmdit4j.pipeline.GenerationResult;
import io.mmdit4j.pipeline.GenerationSettings;
import io.mmdit4j.pipeline.LoadOptions;
import io.mmdit4j.pipeline.Pipeline;
import io.mmdit4j.pipeline.Pipelines;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.sampling.Noise;
import io.mmdit4j.sampling.Schedule;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.bytedeco.pytorch.global.torch.equal;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** FLUX with true classifier-free guidance (diffusers' {@code true_cfg_scale} with a negative prompt) on the demo model. */
class FluxTrueCfgTest {
    private static Pipeline pipe;

    @BeforeAll
    static void load() {
        pipe = Pipelines.load("flux-tiny-demo", LoadOptions.defaults());
    }

    @AfterAll
    static void close() {
        pipe.close();
    }

    private static GenerationRequest.Builder request(String prompt) {
        return GenerationRequest.builder().prompt(prompt).size(32, 32).steps(2).seed(1).maxSequenceLength(16);
    }

    /** The velocity of step 0 on {@code x}, caller-owned. */
    private static Tensor velocity(GenerationSettings s, Tensor x) {
        FluxPipeline f = pipe.unwrap(FluxPipeline.class);
        Schedule schedule = f.schedule(s);
        try (FluxTextEncoders.Embeddings e = f.encode(s); ModulationGuidance none = ModulationGuidance.none();
             FluxPipeline.Velocity v = f.velocity(s, schedule, e, none, null)) {
            return v.at(x, 0);
        }
    }

    @Test
    void theVelocityIsNegativePlusScaleTimesTheDifference() {
        GenerationSettings cfg = pipe.resolve(request("a wolf").option(new TrueCfg(3.0, List.of("blurry"))).build());
        GenerationSettings pos = pipe.resolve(request("a wolf").build()), neg = pipe.resolve(request("blurry").build());
        try (PointerScope scope = new PointerScope()) {
            Tensor x = FluxLatents.pack(Noise.randn(Noise.fluxLatentShape(1, 32, 32), 7, DType.F32)).contiguous();
            Tensor v = velocity(cfg, x), vp = velocity(pos, x), vn = velocity(neg, x);
            float[] a = Tensors.toFloats(v), p = Tensors.toFloats(vp), n = Tensors.toFloats(vn);
            for (int i = 0; i < a.length; i++) assertEquals(n[i] + 3.0f * (p[i] - n[i]), a[i], 1e-4, "v = v_neg + 3·(v_pos − v_neg) at " + i);
        }
    }

    @Test
    void scaleOneIsOffAndAScaleChangesTheImage() {
        try (GenerationResult plain = pipe.generate(request("a wolf").build());
             GenerationResult one = pipe.generate(request("a wolf").option(new TrueCfg(1.0, List.of("blurry"))).build());
             GenerationResult three = pipe.generate(request("a wolf").option(new TrueCfg(3.0, List.of("blurry"))).build())) {
            assertTrue(equal(plain.images(), one.images()), "scale 1: no true CFG, bit-identical (diffusers' true_cfg_scale > 1)");
            assertFalse(equal(plain.images(), three.images()));
            assertEquals("blurry", three.settings().toJson().get("negative_prompt").asText());
            assertEquals(3.0, three.settings().toJson().get("true_cfg_scale").asDouble());
        }
    }
}
