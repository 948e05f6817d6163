package io.mmdit4j.vae;

import com.fasterxml.jackson.databind.JsonNode;
import io.mmdit4j.io.JsonConfigs;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.io.StateDict;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Objects;
import java.util.regex.Pattern;

/**
 * diffusers {@code AutoencoderKL} hyper-parameters ({@code vae/config.json} names). Named factories for the
 * FLUX.1 and SD3 VAEs, reading of a diffusers config, and detection from a checkpoint's tensor names and
 * shapes (the Black Forest Labs {@code ae.safetensors} carries no config).
 *
 * @param inChannels           image channels into the encoder ({@code in_channels}, 3)
 * @param outChannels          image channels out of the decoder ({@code out_channels}, 3)
 * @param latentChannels       {@code latent_channels} (16 for FLUX/SD3, 4 for SD 1.x/SDXL)
 * @param blockOutChannels     {@code block_out_channels}, encoder order (the decoder runs them reversed)
 * @param layersPerBlock       resnets per encoder down block; decoder up blocks have one more
 * @param normNumGroups        GroupNorm groups everywhere ({@code norm_num_groups})
 * @param scalingFactor        {@code scaling_factor}: transformer latents = (z - shift) * scaling
 * @param shiftFactor          {@code shift_factor}, or null when the model has none (SD 1.x/SDXL)
 * @param useQuantConv         a 1x1 {@code quant_conv} after the encoder
 * @param usePostQuantConv     a 1x1 {@code post_quant_conv} before the decoder
 * @param midBlockAddAttention the mid blocks have their single-head attention
 * @param forceUpcast          recorded only: FLUX/SD3 pipelines do not honour it (MODEL-SPEC B.7)
 * @param sampleSize           {@code sample_size} in pixels: the tile size of diffusers' tiled decode
 */
public record VaeConfig(int inChannels, int outChannels, int latentChannels, int[] blockOutChannels, int layersPerBlock,
                        int normNumGroups, double scalingFactor, Double shiftFactor, boolean useQuantConv,
                        boolean usePostQuantConv, boolean midBlockAddAttention, boolean forceUpcast, int sampleSize)
        implements VaeBlocks {

    public VaeConfig {
        VaeBlocks.check(inChannels, outChannels, latentChannels, blockOutChannels, layersPerBlock, normNumGroups, scalingFactor);
        blockOutChannels = blockOutChannels.clone();
        if (shiftFactor != null && !Double.isFinite(shiftFactor)) {
            throw new IllegalArgumentException("shift_factor must be finite, got " + shiftFactor);
        }
    }

    /** The FLUX.1 VAE ({@code ae.safetensors} / FLUX.1 {@code vae/}): scaling 0.3611, shift 0.1159. */
    public static VaeConfig flux() {
        return new VaeConfig(3, 3, 16, new int[] {128, 256, 512, 512}, 2, 32, 0.3611, 0.1159, false, false, true, true, 1024);
    }

    /** The SD3 / SD3.5 VAE: the FLUX architecture with scaling 1.5305, shift 0.0609. */
    public static VaeConfig sd3() {
        return flux().withScaling(1.5305, 0.0609);
    }

    public VaeConfig withScaling(double scaling, Double shift) {
        return new VaeConfig(inChannels, outChannels, latentChannels, blockOutChannels, layersPerBlock, normNumGroups, scaling, shift,
                useQuantConv, usePostQuantConv, midBlockAddAttention, forceUpcast, sampleSize);
    }

    public VaeConfig withNormNumGroups(int groups) {
        return new VaeConfig(inChannels, outChannels, latentChannels, blockOutChannels, layersPerBlock, groups, scalingFactor,
                shiftFactor, useQuantConv, usePostQuantConv, midBlockAddAttention, forceUpcast, sampleSize);
    }

    @Override
    public int[] blockOutChannels() {
        return blockOutChannels.clone();
    }

    @Override
    public int numBlocks() {
        return blockOutChannels.length;
    }

    /** Pixels per latent along each axis ({@code vae_scale_factor} = 2^(blocks-1); 8 for FLUX/SD3). */
    public int scaleFactor() {
        return 1 << (blockOutChannels.length - 1);
    }

    @Override
    public int channels(int block) {
        return blockOutChannels[block];
    }

    /** diffusers' default tile in latents for tiled decode: {@code sample_size / scale_factor} (128 for FLUX). */
    public int defaultTileLatent() {
        return Math.max(1, sampleSize / scaleFactor());
    }

    /** diffusers' default overlap in latents ({@code tile_overlap_factor} 0.25): tile - int(tile·0.75). */
    public int defaultOverlapLatent() {
        int tile = defaultTileLatent();
        return tile - (int) (tile * 0.75);
    }

    // ---------------------------------------------------------------- config.json

    /** Reads a diffusers {@code vae/config.json}; missing fields take diffusers' AutoencoderKL defaults. */
    public static VaeConfig read(Path configJson) {
        return fromJson(JsonConfigs.readObject(configJson), configJson.toString());
    }

    /** A diffusers AutoencoderKL config as JSON (a config.json, or the {@code config} of a golden case). */
    public static VaeConfig fromJson(JsonNode c, String origin) {
        int[] channels = VaeBlocks.readBlocks(c, origin, "AutoencoderKL", new int[] {64}, "DownEncoderBlock2D", "UpDecoderBlock2D");
        JsonNode shift = c.get("shift_factor");
        try {
            return new VaeConfig(JsonConfigs.intOr(c, origin, "in_channels", 3), JsonConfigs.intOr(c, origin, "out_channels", 3),
                    JsonConfigs.intOr(c, origin, "latent_channels", 4), channels, JsonConfigs.intOr(c, origin, "layers_per_block", 1),
                    JsonConfigs.intOr(c, origin, "norm_num_groups", 32), JsonConfigs.doubleOr(c, origin, "scaling_factor", 0.18215),
                    shift == null || shift.isNull() ? null : JsonConfigs.doubleOr(c, origin, "shift_factor", 0),
                    JsonConfigs.boolOr(c, origin, "use_quant_conv", true), JsonConfigs.boolOr(c, origin, "use_post_quant_conv", true),
                    JsonConfigs.boolOr(c, origin, "mid_block_add_attention", true), JsonConfigs.boolOr(c, origin, "force_upcast", true),
                    JsonConfigs.intOr(c, origin, "sample_size", 32));
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(origin + ": " + e.getMessage(), e);
        }
    }

    // ---------------------------------------------------------------- detection

    private static final Pattern DOWN_BLOCK = Pattern.compile("^encoder\\.down_blocks\\.(\\d+)\\.");
    private static final Pattern FIRST_BLOCK_RESNET = Pattern.compile("^encoder\\.down_blocks\\.0\\.resnets\\.(\\d+)\\.");

    /** As {@link #detect(StateDict, int)} with 32 GroupNorm groups (every released AutoencoderKL). */
    public static VaeConfig detect(StateDict sd) {
        return detect(sd, 32);
    }

    /**
     * The configuration of diffusers-named AutoencoderKL tensors (a BFL/LDM file is mapped first, see
     * {@link VaeKeyMap}). GroupNorm group counts are not visible in weights and are given; scaling and shift are
     * not either: 16 latent channels get FLUX's (0.3611, 0.1159; pass {@link #sd3()} or call
     * {@link #withScaling} for SD3's VAE), other counts SD 1.x's 0.18215 without shift.
     */
    public static VaeConfig detect(StateDict sd, int normGroups) {
        long[] decIn = sd.requireShape("decoder.conv_in.weight", 4, "AutoencoderKL");
        long[] encIn = sd.requireShape("encoder.conv_in.weight", 4, "AutoencoderKL");
        long[] decOut = sd.requireShape("decoder.conv_out.weight", 4, "AutoencoderKL");
        int blocks = sd.countIndexed(DOWN_BLOCK);
        if (blocks < 1) throw new ModelFormatException(sd.origin() + ": not an AutoencoderKL checkpoint: no 'encoder.down_blocks.*' tensors");
        int[] channels = new int[blocks];
        for (int i = 0; i < blocks; i++) {
            channels[i] = (int) sd.requireShape("encoder.down_blocks." + i + ".resnets.0.conv1.weight", 4, "AutoencoderKL")[0];
        }
        int layers = sd.countIndexed(FIRST_BLOCK_RESNET);
        int latent = (int) decIn[1];
        for (int c : channels) {
            if (c % normGroups != 0) {
                throw new ModelFormatException(sd.origin() + ": block channels " + Arrays.toString(channels) + " are not multiples of "
                        + normGroups + " GroupNorm groups; norm_num_groups cannot be seen in the weights, pass a VaeConfig (or a config.json)");
            }
        }
        boolean attention = sd.contains("decoder.mid_block.attentions.0.to_q.weight") || sd.contains("encoder.mid_block.attentions.0.to_q.weight");
        try {
            return new VaeConfig((int) encIn[1], (int) decOut[0], latent, channels, layers, normGroups, latent == 16 ? 0.3611 : 0.18215,
                    latent == 16 ? 0.1159 : null, sd.contains("quant_conv.weight"), sd.contains("post_quant_conv.weight"), attention, true,
                    latent == 16 ? 1024 : 512);
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(sd.origin() + ": " + e.getMessage(), e);
        }
    }

    // ---------------------------------------------------------------- record plumbing (int[] field)

    @Override
    public boolean equals(Object o) {
        if (!(o instanceof VaeConfig c)) return false;
        return inChannels == c.inChannels && outChannels == c.outChannels && latentChannels == c.latentChannels
                && Arrays.equals(blockOutChannels, c.blockOutChannels) && layersPerBlock == c.layersPerBlock
                && normNumGroups == c.normNumGroups && Double.compare(scalingFactor, c.scalingFactor) == 0
                && Objects.equals(shiftFactor, c.shiftFactor) && useQuantConv == c.useQuantConv && usePostQuantConv == c.usePostQuantConv
                && midBlockAddAttention == c.midBlockAddAttention && forceUpcast == c.forceUpcast && sampleSize == c.sampleSize;
    }

    @Override
    public int hashCode() {
        return Objects.hash(inChannels, outChannels, latentChannels, Arrays.hashCode(blockOutChannels), layersPerBlock, normNumGroups,
                scalingFactor, shiftFactor, useQuantConv, usePostQuantConv, midBlockAddAttention, forceUpcast, sampleSize);
    }

    @Override
    public String toString() {
        return "VaeConfig[in=" + inChannels + ", out=" + outChannels + ", latent=" + latentChannels + ", blocks="
                + Arrays.toString(blockOutChannels) + ", layers=" + layersPerBlock + ", groups=" + normNumGroups + ", scaling="
                + scalingFactor + ", shift=" + shiftFactor + ", quant_conv=" + useQuantConv + ", post_quant_conv=" + usePostQuantConv
                + ", mid_attention=" + midBlockAddAttention + ", sample_size=" + sampleSize + "]";
    }
}
