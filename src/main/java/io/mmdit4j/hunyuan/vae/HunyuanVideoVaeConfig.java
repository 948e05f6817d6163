package io.mmdit4j.hunyuan.vae;

import com.fasterxml.jackson.databind.JsonNode;
import io.mmdit4j.io.JsonConfigs;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.vae.VaeBlocks;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

/**
 * diffusers {@code AutoencoderKLHunyuanVideo} hyper-parameters ({@code vae/config.json} names).
 *
 * @param inChannels               video channels into the encoder ({@code in_channels}, 3)
 * @param outChannels              video channels out of the decoder ({@code out_channels}, 3)
 * @param latentChannels           {@code latent_channels} (16)
 * @param blockOutChannels         {@code block_out_channels}, encoder order (the decoder runs them reversed)
 * @param layersPerBlock           resnets per encoder block; decoder up blocks have one more
 * @param normNumGroups            GroupNorm groups everywhere
 * @param scalingFactor            transformer latents = z · scaling_factor (no shift)
 * @param spatialCompressionRatio  pixels per latent along H and W (8)
 * @param temporalCompressionRatio frames per latent frame after the first (4; the only value diffusers' decoder accepts)
 * @param midBlockAddAttention     the mid blocks have their frame-causal single-head attention
 */
public record HunyuanVideoVaeConfig(int inChannels, int outChannels, int latentChannels, List<Integer> blockOutChannels,
                                    int layersPerBlock, int normNumGroups, double scalingFactor, int spatialCompressionRatio,
                                    int temporalCompressionRatio, boolean midBlockAddAttention) implements VaeBlocks {

    public HunyuanVideoVaeConfig {
        VaeBlocks.check(inChannels, outChannels, latentChannels, blockOutChannels == null ? null : ints(blockOutChannels), layersPerBlock,
                normNumGroups, scalingFactor);
        blockOutChannels = List.copyOf(blockOutChannels);
        if (temporalCompressionRatio != 4) {
            throw new IllegalArgumentException("temporal_compression_ratio " + temporalCompressionRatio + " is not supported by the decoder (only 4, as diffusers)");
        }
        if (spatialCompressionRatio < 1 || Integer.bitCount(spatialCompressionRatio) != 1) {
            throw new IllegalArgumentException("spatial_compression_ratio must be a power of two, got " + spatialCompressionRatio);
        }
        int blocks = blockOutChannels.size();
        int spatial = Integer.numberOfTrailingZeros(spatialCompressionRatio);
        if (spatial > blocks) {
            throw new IllegalArgumentException("spatial_compression_ratio " + spatialCompressionRatio + " needs " + spatial
                    + " up-sampling blocks, block_out_channels has " + blocks);
        }
        if (blocks < 3) throw new IllegalArgumentException("temporal_compression_ratio 4 needs at least 3 blocks, block_out_channels has " + blocks);
    }

    /** The released HunyuanVideo VAE ({@code hunyuanvideo-community/HunyuanVideo}, {@code vae/config.json}). */
    public static HunyuanVideoVaeConfig hunyuanVideo() {
        return new HunyuanVideoVaeConfig(3, 3, 16, List.of(128, 256, 512, 512), 2, 32, 0.476986, 8, 4, true);
    }

    @Override
    public int numBlocks() { return blockOutChannels.size(); }

    @Override
    public int channels(int block) { return blockOutChannels.get(block); }

    /** Decoder up block {@code i} doubles H and W (diffusers: {@code i < log2(spatial_compression_ratio)}). */
    public boolean upsamplesSpatially(int i) {
        return i < Integer.numberOfTrailingZeros(spatialCompressionRatio);
    }

    /** Decoder up block {@code i} doubles the frames after the first (ratio 4: the two blocks before the last). */
    public boolean upsamplesTemporally(int i) {
        int n = numBlocks();
        return i >= n - 1 - Integer.numberOfTrailingZeros(temporalCompressionRatio) && i != n - 1;
    }

    /** Encoder down block {@code i} halves H and W (diffusers: {@code i < log2(spatial_compression_ratio)}). */
    public boolean downsamplesSpatially(int i) {
        return i < Integer.numberOfTrailingZeros(spatialCompressionRatio);
    }

    /** Encoder down block {@code i} halves the frames after the first (ratio 4: the two blocks before the last). */
    public boolean downsamplesTemporally(int i) {
        int n = numBlocks();
        return i >= n - 1 - Integer.numberOfTrailingZeros(temporalCompressionRatio) && i != n - 1;
    }

    /** Latent frames of a {@code videoFrames}-frame video: {@code 1 + (F − 1)/4}. */
    public long latentFrames(long videoFrames) {
        return 1 + (videoFrames - 1) / temporalCompressionRatio;
    }

    /** Frames of the decoded video for {@code latentFrames}: {@code 1 + 4·(F' - 1)}. */
    public long videoFrames(long latentFrames) {
        return 1 + temporalCompressionRatio * (latentFrames - 1);
    }

    // ---------------------------------------------------------------- config.json

    public static HunyuanVideoVaeConfig read(Path configJson) {
        return fromJson(JsonConfigs.readObject(configJson), configJson.toString());
    }

    /** A diffusers AutoencoderKLHunyuanVideo config as JSON; missing fields take diffusers' defaults (the released model's). */
    public static HunyuanVideoVaeConfig fromJson(JsonNode c, String origin) {
        int[] channels = VaeBlocks.readBlocks(c, origin, "AutoencoderKLHunyuanVideo", ints(hunyuanVideo().blockOutChannels()),
                "HunyuanVideoDownBlock3D", "HunyuanVideoUpBlock3D");
        try {
            return new HunyuanVideoVaeConfig(JsonConfigs.intOr(c, origin, "in_channels", 3), JsonConfigs.intOr(c, origin, "out_channels", 3),
                    JsonConfigs.intOr(c, origin, "latent_channels", 16), Arrays.stream(channels).boxed().toList(),
                    JsonConfigs.intOr(c, origin, "layers_per_block", 2),
                    JsonConfigs.intOr(c, origin, "norm_num_groups", 32), JsonConfigs.doubleOr(c, origin, "scaling_factor", 0.476986),
                    JsonConfigs.intOr(c, origin, "spatial_compression_ratio", 8), JsonConfigs.intOr(c, origin, "temporal_compression_ratio", 4),
                    JsonConfigs.boolOr(c, origin, "mid_block_add_attention", true));
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(origin + ": " + e.getMessage(), e);
        }
    }

    private static int[] ints(List<Integer> values) {
        return values.stream().mapToInt(Integer::intValue).toArray();
    }
}
