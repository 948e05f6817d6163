package io.mmdit4j.vae.wan;

import com.fasterxml.jackson.databind.JsonNode;
import io.mmdit4j.io.JsonConfigs;
import io.mmdit4j.io.ModelFormatException;

import java.nio.file.Path;
import java.util.Arrays;

/**
 * {@code AutoencoderKLWan} hyper-parameters (diffusers {@code vae/config.json}), Wan 2.1 layout: {@code base_dim},
 * {@code dim_mult}, {@code num_res_blocks}, {@code temperal_downsample} (8× spatial, 4× temporal with the default
 * {@code [False, True, True]}), {@code z_dim}, and the per-channel {@code latents_mean} / {@code latents_std}.
 */
public record WanVaeConfig(int baseDim, int decoderBaseDim, int zDim, int[] dimMult, int numResBlocks, boolean[] temperalDownsample,
                           int outChannels, double[] latentsMean, double[] latentsStd) {

    public WanVaeConfig {
        if (baseDim < 1 || decoderBaseDim < 1 || zDim < 1 || numResBlocks < 0 || outChannels < 1) {
            throw new IllegalArgumentException("base_dim, z_dim, num_res_blocks and out_channels must be positive");
        }
        if (dimMult == null || dimMult.length < 1 || temperalDownsample == null || temperalDownsample.length != dimMult.length - 1) {
            throw new IllegalArgumentException("dim_mult needs one entry more than temperal_downsample");
        }
        if (latentsMean == null || latentsStd == null || latentsMean.length != zDim || latentsStd.length != zDim) {
            throw new IllegalArgumentException("latents_mean and latents_std need z_dim = " + zDim + " entries");
        }
        dimMult = dimMult.clone();
        temperalDownsample = temperalDownsample.clone();
        latentsMean = latentsMean.clone();
        latentsStd = latentsStd.clone();
    }

    /** The Wan 2.1 VAE of Wan 2.1 and Cosmos-Predict2 (base 96, mult [1, 2, 4, 4], 2 res blocks, z 16). */
    public static WanVaeConfig wan21() {
        return new WanVaeConfig(96, 96, 16, new int[] {1, 2, 4, 4}, 2, new boolean[] {false, true, true}, 3, DEFAULT_MEAN, DEFAULT_STD);
    }

    static final double[] DEFAULT_MEAN = {-0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508, 0.4134, -0.0715, 0.5517,
            -0.3632, -0.1922, -0.9497, 0.2503, -0.2921};
    static final double[] DEFAULT_STD = {2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743, 3.2687, 2.1526, 2.8652, 1.5579,
            1.6382, 1.1253, 2.8251, 1.9160};

    /** Spatial compression: 2^(number of stages that downsample) = 8. */
    public int spatialCompression() {
        return 1 << temperalDownsample.length;
    }

    /** Temporal compression: 2^(stages that also downsample time) = 4. */
    public int temporalCompression() {
        int n = 0;
        for (boolean b : temperalDownsample) n += b ? 1 : 0;
        return 1 << n;
    }

    /** Decoded frames of {@code latentFrames}: {@code 1 + 4·(F − 1)}. */
    public long videoFrames(long latentFrames) {
        return 1 + temporalCompression() * (latentFrames - 1);
    }

    public static WanVaeConfig read(Path configJson) {
        JsonNode c = JsonConfigs.readObject(configJson);
        JsonConfigs.checkClass(c, configJson, "AutoencoderKLWan");
        if (JsonConfigs.boolOr(c, configJson, "is_residual", false)) {
            throw new ModelFormatException(configJson + ": is_residual true (the Wan 2.2 VAE) is not supported: Wan 2.1 layout only");
        }
        JsonNode patch = c.get("patch_size");
        if (patch != null && !patch.isNull() && patch.asInt() != 1) {
            throw new ModelFormatException(configJson + ": patch_size " + patch + " (the Wan 2.2 VAE) is not supported");
        }
        if (c.has("attn_scales") && c.get("attn_scales").isArray() && c.get("attn_scales").size() > 0) {
            throw new ModelFormatException(configJson + ": attn_scales " + c.get("attn_scales") + ": attention outside the mid block is not supported");
        }
        int base = JsonConfigs.intOr(c, configJson, "base_dim", 96);
        int z = JsonConfigs.intOr(c, configJson, "z_dim", 16);
        try {
            return new WanVaeConfig(base, JsonConfigs.intOr(c, configJson, "decoder_base_dim", base), z,
                    ints(c, configJson, "dim_mult", new int[] {1, 2, 4, 4}), JsonConfigs.intOr(c, configJson, "num_res_blocks", 2),
                    bools(c, configJson, "temperal_downsample", new boolean[] {false, true, true}), JsonConfigs.intOr(c, configJson, "out_channels", 3),
                    doubles(c, configJson, "latents_mean", DEFAULT_MEAN), doubles(c, configJson, "latents_std", DEFAULT_STD));
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(configJson + ": " + e.getMessage(), e);
        }
    }

    private static int[] ints(JsonNode c, Path f, String name, int[] dflt) {
        JsonNode a = c.get(name);
        if (a == null || a.isNull()) return dflt;
        if (!a.isArray()) throw new ModelFormatException(f + ": " + name + " must be a list, found " + a);
        int[] out = new int[a.size()];
        for (int i = 0; i < out.length; i++) out[i] = a.get(i).asInt();
        return out;
    }

    private static boolean[] bools(JsonNode c, Path f, String name, boolean[] dflt) {
        JsonNode a = c.get(name);
        if (a == null || a.isNull()) return dflt;
        if (!a.isArray()) throw new ModelFormatException(f + ": " + name + " must be a list, found " + a);
        boolean[] out = new boolean[a.size()];
        for (int i = 0; i < out.length; i++) out[i] = a.get(i).asBoolean();
        return out;
    }

    private static double[] doubles(JsonNode c, Path f, String name, double[] dflt) {
        JsonNode a = c.get(name);
        if (a == null || a.isNull()) return dflt;
        if (!a.isArray()) throw new ModelFormatException(f + ": " + name + " must be a list, found " + a);
        double[] out = new double[a.size()];
        for (int i = 0; i < out.length; i++) out[i] = a.get(i).asDouble();
        return out;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof WanVaeConfig c && baseDim == c.baseDim && decoderBaseDim == c.decoderBaseDim && zDim == c.zDim
                && Arrays.equals(dimMult, c.dimMult) && numResBlocks == c.numResBlocks && Arrays.equals(temperalDownsample, c.temperalDownsample)
                && outChannels == c.outChannels && Arrays.equals(latentsMean, c.latentsMean) && Arrays.equals(latentsStd, c.latentsStd);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(new int[] {baseDim, decoderBaseDim, zDim, Arrays.hashCode(dimMult), numResBlocks, Arrays.hashCode(temperalDownsample)});
    }

    @Override
    public String toString() {
        return "WanVaeConfig[base " + decoderBaseDim + ", mult " + Arrays.toString(dimMult) + ", " + numResBlocks + " res blocks, z " + zDim
                + ", temporal " + Arrays.toString(temperalDownsample) + "]";
    }
}
