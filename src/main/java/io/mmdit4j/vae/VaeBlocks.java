package io.mmdit4j.vae;

import com.fasterxml.jackson.databind.JsonNode;
import io.mmdit4j.io.JsonConfigs;
import io.mmdit4j.io.ModelFormatException;

import java.util.Arrays;

/**
 * The block layout that AutoencoderKL's and HunyuanVideo's VAE configs share (diffusers {@code config.json} names), from
 * which {@link Decoder} (both) and {@link Encoder} (AutoencoderKL) are built, with the checks and the reading of these
 * fields that the two configs share.
 */
public interface VaeBlocks {
    /** Every GroupNorm of both VAEs (and the mid-block attentions') uses this epsilon. */
    double NORM_EPS = 1e-6;

    int inChannels();

    int outChannels();

    int latentChannels();

    /** Resnets per encoder down block; decoder up blocks have one more. */
    int layersPerBlock();

    int normNumGroups();

    boolean midBlockAddAttention();

    int numBlocks();

    /** {@code block_out_channels[block]} (encoder order; the decoder runs them reversed). */
    int channels(int block);

    default int topChannels() {
        return channels(numBlocks() - 1);
    }

    /** The checks of the shared fields, for the configs' constructors (IllegalArgumentException). */
    static void check(int inChannels, int outChannels, int latentChannels, int[] blockOutChannels, int layersPerBlock,
                      int normNumGroups, double scalingFactor) {
        if (inChannels < 1 || outChannels < 1 || latentChannels < 1) {
            throw new IllegalArgumentException("in_channels, out_channels and latent_channels must be >= 1, got "
                    + inChannels + ", " + outChannels + ", " + latentChannels);
        }
        if (blockOutChannels == null || blockOutChannels.length == 0) {
            throw new IllegalArgumentException("block_out_channels must name at least one block");
        }
        if (layersPerBlock < 1) throw new IllegalArgumentException("layers_per_block must be >= 1, got " + layersPerBlock);
        if (normNumGroups < 1) throw new IllegalArgumentException("norm_num_groups must be >= 1, got " + normNumGroups);
        for (int c : blockOutChannels) {
            if (c < 1 || c % normNumGroups != 0) {
                throw new IllegalArgumentException("block_out_channels " + Arrays.toString(blockOutChannels)
                        + " must be positive multiples of norm_num_groups " + normNumGroups);
            }
        }
        if (!(scalingFactor > 0) || Double.isInfinite(scalingFactor)) {
            throw new IllegalArgumentException("scaling_factor must be a positive number, got " + scalingFactor);
        }
    }

    /**
     * Checks what a diffusers VAE {@code config.json} must be for the class {@code className} (a JSON object, that
     * {@code _class_name}, SiLU, one {@code downType} / {@code upType} per block where the block types are given) and
     * returns its {@code block_out_channels} ({@code dflt} when absent).
     */
    static int[] readBlocks(JsonNode c, String origin, String className, int[] dflt, String downType, String upType) {
        if (c == null || !c.isObject()) throw new ModelFormatException(origin + ": config must be a JSON object");
        JsonConfigs.checkClass(c, origin, className);
        String act = c.path("act_fn").asText("silu");
        if (!act.equals("silu")) throw new ModelFormatException(origin + ": act_fn '" + act + "' is not supported (expected silu)");
        int[] channels = dflt;
        JsonNode v = c.get("block_out_channels");
        if (v != null && !v.isNull()) {
            if (!v.isArray() || v.isEmpty()) throw new ModelFormatException(origin + ": block_out_channels must be a non-empty array, found " + v);
            channels = new int[v.size()];
            for (int i = 0; i < channels.length; i++) {
                if (!v.get(i).isInt()) throw new ModelFormatException(origin + ": block_out_channels must hold integers, found " + v);
                channels[i] = v.get(i).asInt();
            }
        }
        checkBlockTypes(c, origin, "down_block_types", downType, channels.length);
        checkBlockTypes(c, origin, "up_block_types", upType, channels.length);
        return channels;
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
}
