package io.mmdit4j.hunyuan;

import io.mmdit4j.GoldenData;
import io.mmdit4j.io.StateDict;
import io.mmdit4j.io.TensorSource;
import io.mmdit4j.io.WeightFiles;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The shipped configuration's parameter count (MODEL-SPEC E.1, counted by hand) and config detection from weights. */
class HunyuanVideoConfigTest {

    @Test
    void parameterCountOfTheShippedConfigMatchesTheSpecExactly() {
        // E.1: D = 24·128, MLP 4·D, 20 dual + 40 single + 2 refiner blocks, text 4096, pooled 768, 16 channels, patch 1×2×2.
        long d = 24 * 128, m = 4 * d, hd = 128, text = 4096, pooled = 768;
        long patch = d * 16 * 1 * 2 * 2 + d;
        long mlpEmb256 = (256 * d + d) + (d * d + d);                         // TimestepEmbedding(256 -> D)
        long temb = 2 * mlpEmb256 + (pooled * d + d) + (d * d + d);           // timestep + guidance + pooled text
        long refinerEmb = mlpEmb256 + (text * d + d) + (d * d + d) + (text * d + d); // own t/text embedders + proj_in
        long refinerBlock = 2 * d + 4 * (d * d + d) + 2 * d + (d * m + m) + (m * d + d) + (d * 2 * d + 2 * d);
        long dual = 2 * (d * 6 * d + 6 * d) + 8 * (d * d + d) + 4 * hd + 2 * ((d * m + m) + (m * d + d));
        long single = (d * 3 * d + 3 * d) + (d * m + m) + 3 * (d * d + d) + 2 * hd + ((d + m) * d + d);
        long out = (d * 2 * d + 2 * d) + (d * 64 + 64);
        long expected = patch + temb + refinerEmb + 2 * refinerBlock + 20 * dual + 40 * single + out;
        assertEquals(expected, HunyuanVideoParameters.count(HunyuanVideoConfig.hunyuanVideo()));
        assertEquals(12_821_012_544L, expected, "≈ 12.8 B parameters");
    }

    @Test
    void detectionFromTensorNamesAndShapesMatchesTheConfigJson() {
        var folder = GoldenData.root().resolve("hunyuan_video_transformer/models/tiny/transformer");
        HunyuanVideoConfig fromJson = HunyuanVideoConfig.fromDiffusersConfig(folder.resolve("config.json"));
        try (TensorSource s = WeightFiles.open(folder.resolve("diffusion_pytorch_model.safetensors"))) {
            HunyuanVideoConfig detected = HunyuanVideoConfig.detect(StateDict.of(s), new int[] {4, 6, 6});
            assertEquals(fromJson, detected);
        }
        assertEquals(2, fromJson.numLayers());
        assertEquals(2, fromJson.numSingleLayers());
        assertEquals(1, fromJson.numRefinerLayers());
        assertEquals(128, fromJson.mlpHidden());
        assertEquals(24, fromJson.pooledProjectionDim());
        assertEquals(32, fromJson.textEmbedDim());
    }
}
