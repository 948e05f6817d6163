package io.mmdit4j.train;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.shapes.ShapesWorld;
import io.mmdit4j.vae.AutoencoderKL;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The VAE stage: a few steps on small pictures reduce the reconstruction loss and write a VAE folder the engine loads. */
class VaeTrainingTest {
    @TempDir
    Path tmp;

    @Test
    void aFewStepsLearnAndWriteALoadableVae() throws IOException {
        ObjectNode config = VaeTraining.demoConfig(4);
        config.putArray("block_out_channels").add(8).add(16).add(16);
        config.put("norm_num_groups", 4);
        List<VaeTraining.Step> steps = new ArrayList<>();
        Path dir = tmp.resolve("vae");
        VaeTraining.train(config, new ShapesWorld(32, 1, 2, 3), 25, 4, 3e-3, 1e-5, 4, dir, steps::add);
        double first = steps.get(0).mse(), last = steps.get(steps.size() - 1).mse();
        assertTrue(last < 0.7 * first, "reconstruction MSE " + first + " -> " + last);
        ObjectNode written = (ObjectNode) new ObjectMapper().readTree(dir.resolve("config.json").toFile());
        assertTrue(Double.isFinite(written.get("scaling_factor").asDouble()) && written.get("scaling_factor").asDouble() > 0);
        try (AutoencoderKL vae = AutoencoderKL.load(dir, DType.F32); PointerScope scope = new PointerScope()) {
            Tensor img = ShapesData.images(List.of(new ShapesWorld(32, 1, 2, 3).scene(0)));
            try (AutoencoderKL.Encoded e = vae.encode(img)) {
                assertArrayEquals(new long[] {1, 16, 8, 8}, io.mmdit4j.runtime.Tensors.shape(e.mean()));
                Tensor out = vae.decode(e.mean());
                assertArrayEquals(new long[] {1, 3, 32, 32}, io.mmdit4j.runtime.Tensors.shape(out));
                out.close();
            }
        }
        assertThrows(IllegalArgumentException.class, () -> VaeTraining.train(config, new ShapesWorld(32, 1, 2, 3), 1, 1, 1e-3, 0, 0, dir, null));
    }

    @Test
    void theDecoderFineTuneLeavesTheEncoderAndItsLatentsExactlyAsTheyWere() throws IOException {
        ObjectNode config = VaeTraining.demoConfig(8);
        config.putArray("block_out_channels").add(8).add(16).add(16).add(16);
        config.put("norm_num_groups", 4);
        ShapesWorld world = new ShapesWorld(32, 1, 2, 3);
        Path base = tmp.resolve("base"), tuned = tmp.resolve("tuned");
        double before = VaeTraining.train(config, world, 10, 4, 3e-3, 1e-5, 4, base, null);
        List<VaeTraining.Step> steps = new ArrayList<>();
        double heldOut = VaeTraining.fineTuneDecoder(base, world, 20, 4, 3e-3, 5, tuned, steps::add);
        assertTrue(steps.size() == 20);
        assertTrue(heldOut < before, "held-out reconstruction MSE " + before + " -> " + heldOut);
        assertTrue(java.util.Objects.equals(new ObjectMapper().readTree(base.resolve("config.json").toFile()),
                new ObjectMapper().readTree(tuned.resolve("config.json").toFile())), "the config, shift and scaling factors included, is copied unchanged");
        int decoderChanged = 0;
        try (io.mmdit4j.io.SafetensorsFile a = io.mmdit4j.io.SafetensorsFile.open(base.resolve("diffusion_pytorch_model.safetensors"));
             io.mmdit4j.io.SafetensorsFile b = io.mmdit4j.io.SafetensorsFile.open(tuned.resolve("diffusion_pytorch_model.safetensors"));
             PointerScope scope = new PointerScope()) {
            assertTrue(a.keys().equals(b.keys()));
            for (String k : a.keys()) {
                boolean same = a.load(k).equal(b.load(k));
                if (k.startsWith("decoder.")) decoderChanged += same ? 0 : 1;
                else assertTrue(same, k + " must not change");
            }
        }
        assertTrue(decoderChanged > 10, decoderChanged + " decoder tensors changed");
        try (AutoencoderKL x = AutoencoderKL.load(base, DType.F32); AutoencoderKL y = AutoencoderKL.load(tuned, DType.F32); PointerScope scope = new PointerScope()) {
            Tensor img = ShapesData.images(List.of(world.scene(7)));
            try (AutoencoderKL.Encoded e1 = x.encode(img); AutoencoderKL.Encoded e2 = y.encode(img)) {
                assertTrue(e1.mean().equal(e2.mean()), "the same latents");
            }
        }
        assertThrows(IllegalArgumentException.class, () -> VaeTraining.fineTuneDecoder(tmp.resolve("nothing"), world, 1, 1, 1e-3, 0, tmp.resolve("x"), null));
    }
}
