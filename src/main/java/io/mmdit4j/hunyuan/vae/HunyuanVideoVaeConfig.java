package io.mmdit4j.hunyuan.vae;

import com.fasterxml.jackson.databind.JsonNode;
import io.mmdit4j.io.JsonConfigs;
import io.mmdit4j.io.ModelFormatException;

import java.nio.file.Path;
import java.util.ArrayList;
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
                                    int temporalCompressionRatio, boolean midBlockAddAttention) {

    /** Every GroupNorm (and the mid-block attention's) uses this epsilon. */
    public static final double NORM_EPS = 1e-6;

    public HunyuanVideoVaeConfig {
        if (inChannels < 1 || outChannels < 1 || latentChannels < 1) {
            throw new IllegalArgumentException("in_channels, out_channels and latent_channels must be >= 1, got "
                    + inChannels + ", " + outChannels + ", " + latentChannels);
        }
        if (blockOutChannels == null || blockOutChannels.isEmpty()) throw new IllegalArgumentException("block_out_channels must name at least one block");
        blockOutChannels = List.copyOf(blockOutChannels);
        if (layersPerBlock < 1) throw new IllegalArgumentException("layers_per_block must be >= 1, got " + layersPerBlock);
        if (normNumGroups < 1) throw new IllegalArgumentException("norm_num_groups must be >= 1, got " + normNumGroups);
        for (int c : blockOutChannels) {
            if (c < 1 || c % normNumGroups != 0) {
                throw new IllegalArgumentException("block_out_channels " + blockOutChannels + " must be positive multiples of norm_num_groups " + normNumGroups);
            }
        }
        if (!(scalingFactor > 0) || Double.isInfinite(scalingFactor)) {
            throw new IllegalArgumentException("scaling_factor must be a positive number, got " + scalingFactor);
        }
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

    public int numBlocks() { return blockOutChannels.size(); }

    int channels(int block) { return blockOutChannels.get(block); }

    int topChannels() { return blockOutChannels.get(blockOutChannels.size() - 1); }

    /** Decoder up block {@code i} doubles H and W (diffusers: {@code i < log2(spatial_compression_ratio)}). */
    public boolean upsamplesSpatially(int i) {
        return i < Integer.numberOfTrailingZeros(spatialCompressionRatio);
    }

    /** Decoder up block {@code i} doubles the frames after the first (ratio 4: the two blocks before the last). */
    public boolean upsamplesTemporally(int i) {
        int n = numBlocks();
        return i >= n - 1 - Integer.numberOfTrailingZeros(temporalCompressionRatio) && i != n - 1;
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
        if (c == null || !c.isObject()) throw new ModelFormatException(origin + ": config must be a JSON object");
        JsonConfigs.checkClass(c, origin, "AutoencoderKLHunyuanVideo");
        String act = c.path("act_fn").asText("silu");
        if (!act.equals("silu")) throw new ModelFormatException(origin + ": act_fn '" + act + "' is not supported (expected silu)");
        HunyuanVideoVaeConfig d = hunyuanVideo();
        List<Integer> channels = intList(c, origin, "block_out_channels", d.blockOutChannels());
        checkBlockTypes(c, origin, "up_block_types", "HunyuanVideoUpBlock3D", channels.size());
        checkBlockTypes(c, origin, "down_block_types", "HunyuanVideoDownBlock3D", channels.size());
        try {
            return new HunyuanVideoVaeConfig(JsonConfigs.intOr(c, origin, "in_channels", 3), JsonConfigs.intOr(c, origin, "out_channels", 3),
                    JsonConfigs.intOr(c, origin, "latent_channels", 16), channels, JsonConfigs.intOr(c, origin, "layers_per_block", 2),
                    JsonConfigs.intOr(c, origin, "norm_num_groups", 32), JsonConfigs.doubleOr(c, origin, "scaling_factor", 0.476986),
                    JsonConfigs.intOr(c, origin, "spatial_compression_ratio", 8), JsonConfigs.intOr(c, origin, "temporal_compression_ratio", 4),
                    JsonConfigs.boolOr(c, origin, "mid_block_add_attention", true));
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(origin + ": " + e.getMessage(), e);
        }
    }

    private static void checkBlockTypes(JsonNode c, String origin, String name, String expected, int blocks) {
        JsonNode types = c.get(name);
        if (types == null || types.isNull()) return;
        if (!types.isArray() || types.size() != blocks) {
            throw new ModelFormatException(origin + ": " + name + " must list " + blocks + " blocks (one per block_out_channels entry), found " + types);
        }
        for (JsonNode t : types) {
            if (!t.asText().equals(expected)) {
                throw new ModelFormatException(origin + ": " + name + " contains '" + t.asText() + "', only " + expected + " is supported");
            }
        }
    }

    private static List<Integer> intList(JsonNode c, String origin, String name, List<Integer> dflt) {
        JsonNode v = c.get(name);
        if (v == null || v.isNull()) return dflt;
        if (!v.isArray() || v.isEmpty()) throw new ModelFormatException(origin + ": " + name + " must be a non-empty array, found " + v);
        List<Integer> out = new ArrayList<>();
        for (JsonNode e : v) {
            if (!e.isInt()) throw new ModelFormatException(origin + ": " + name + " must hold integers, found " + v);
            out.add(e.asInt());
        }
        return out;
    }
}
