package io.mmdit4j.flux;

import io.mmdit4j.guidance.ModulationGuidance;
import io.mmdit4j.io.MetaWeights;
import io.mmdit4j.io.StateDict;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.OpCounter;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.DeviceOptional;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.Map;

import static org.bytedeco.pytorch.global.torch.empty;
import static org.bytedeco.pytorch.global.torch.zeros;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Real FLUX.1 sizes on meta tensors: the full key lists load, every shape checks, FLOPs match the known count. */
class FluxDryRunTest {

    @Test
    void realDevKeyListInDiffusersAndBflNamingIsAcceptedAndDetected() {
        for (FluxConfig c : new FluxConfig[] {FluxConfig.dev(), FluxConfig.schnell()}) {
            assertEquals(11_901_408_320L - (c.guidanceEmbeds() ? 0 : 256L * 3072 + 3072 + 3072L * 3072 + 3072), FluxParameters.count(c));
            try (FluxTransformer m = FluxTransformer.fromStateDict(MetaWeights.of("diffusers", FluxParameters.shapes(c), DType.BF16), c, DType.BF16)) {
                assertEquals(c, m.config());
            }
            StateDict bfl = MetaWeights.of("bfl", FluxParameters.bflShapes(c), DType.BF16);
            assertTrue(FluxKeyMap.isBfl(bfl));
            StateDict mapped = FluxKeyMap.fromBfl(bfl);
            assertEquals(c, FluxConfig.detect(mapped, null), "config detected from the BFL names and shapes");
            try (FluxTransformer m = FluxTransformer.fromStateDict(mapped, c, DType.BF16)) {
                assertEquals(57, m.config().totalBlocks());
            }
            Map<String, long[]> comfy = new LinkedHashMap<>();
            FluxParameters.bflShapes(c).forEach((k, v) -> comfy.put(FluxKeyMap.COMFY_PREFIX + k, v));
            assertEquals(c, FluxConfig.detect(FluxKeyMap.fromBfl(MetaWeights.of("comfy", comfy, DType.BF16)), null));
        }
    }

    @Test
    void devAt1024HasTheKnownLinearFlopsAndOutputShape() {
        FluxConfig c = FluxConfig.dev();
        int image = 64 * 64, text = 512;
        try (FluxTransformer model = FluxTransformer.meta(c, DType.BF16); PointerScope s = new PointerScope(); Device meta = new Device("meta")) {
            TensorOptions o = new TensorOptions(ScalarType.BFloat16).device(new DeviceOptional(meta));
            float[] ids = new float[image * 3];
            for (int i = 0; i < image; i++) {
                ids[3 * i + 1] = i / 64;
                ids[3 * i + 2] = i % 64;
            }
            FluxInputs in = new FluxInputs(empty(new long[] {1, image, 64}, o, new MemoryFormatOptional()),
                    empty(new long[] {1, text, 4096}, o, new MemoryFormatOptional()), empty(new long[] {1, 768}, o, new MemoryFormatOptional()),
                    empty(new long[] {1}, o, new MemoryFormatOptional()), empty(new long[] {1}, o, new MemoryFormatOptional()),
                    Tensors.fromFloats(ids, image, 3), zeros(new long[] {text, 3}, new TensorOptions(ScalarType.Float)));
            try (OpCounter.Recording r = OpCounter.record()) {
                Tensor out = model.forward(in, ModulationGuidance.none(), 0);
                assertArrayEquals(new long[] {1, image, 64}, Tensors.shape(out));
                assertTrue(out.is_meta());
                double linear = r.linearFlops();
                assertTrue(Math.abs(linear / 59.5e12 - 1) < 0.02, "linear FLOPs " + linear);
                assertEquals(57, r.attentions().size());
                out.close();
            }
        }
    }
}
