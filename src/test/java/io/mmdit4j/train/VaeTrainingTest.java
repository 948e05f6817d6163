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
}
