package io.mmdit4j.vae;

import io.mmdit4j.runtime.Scopes;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.io.StateDict;
import io.mmdit4j.io.TensorSource;
import io.mmdit4j.io.WeightFiles;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.runtime.Torch;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.InferenceMode;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.bytedeco.pytorch.global.torch.clamp;
import static org.bytedeco.pytorch.global.torch.exp;

/**
 * diffusers {@code AutoencoderKL} (the FLUX.1 and SD3 VAE, and any other DownEncoderBlock2D/UpDecoderBlock2D
 * configuration): encoder to a diagonal Gaussian posterior, decoder back to pixels. Loads diffusers {@code vae/}
 * folders (or a model folder containing {@code vae/}) and Black Forest Labs / LDM single files
 * ({@code ae.safetensors}, see {@link VaeKeyMap}). Weights are views of the memory-mapped file when the compute
 * dtype equals the stored dtype. fp32 and bf16 compute.
 *
 * <p>Like the FLUX and SD3 pipelines, everything runs in the VAE's own dtype: there is no upcast
 * ({@code force_upcast} is only honoured by the SD/SDXL pipelines), and {@link #toImage} clamps in that dtype.
 * Every returned tensor is owned by the caller.
 */
public final class AutoencoderKL implements AutoCloseable {
    private static final Scalar HALF = Native.keep(new Scalar(0.5));
    private static final ScalarOptional LOGVAR_MIN = Native.keep(new ScalarOptional(new Scalar(-30.0)));
    private static final ScalarOptional LOGVAR_MAX = Native.keep(new ScalarOptional(new Scalar(20.0)));

    private final VaeConfig config;
    private final DType dtype;
    private final DeviceSpec device;
    private final Device torchDevice;
    private final Scalar scaling;
    private final Scalar shift; // null without shift_factor

    final Encoder encoder;
    final Decoder decoder;
    final Conv2d quant_conv;      // null unless use_quant_conv
    final Conv2d post_quant_conv; // null unless use_post_quant_conv

    /**
     * The posterior {@code DiagonalGaussianDistribution} of {@link #encode}: {@code mean} and {@code logvar} are
     * the two halves of the encoder's moments (logvar clamped to [-30, 20]), {@code std = exp(0.5·logvar)}.
     * All {@code [B, latent, H/f, W/f]} in the VAE dtype, owned by this object.
     */
    public record Encoded(Tensor mean, Tensor logvar, Tensor std) implements AutoCloseable {
        /** {@code mean + std·noise} (diffusers' {@code latent_dist.sample()} with the given standard normal noise); caller-owned. */
        public Tensor sample(Tensor noise) {
            try (InferenceMode guard = new InferenceMode(); PointerScope scope = new PointerScope()) {
                return Tensors.keep(mean.add(std.mul(noise.to(mean.device(), mean.scalar_type()))));
            }
        }

        @Override
        public void close() {
            Native.release(mean);
            Native.release(logvar);
            Native.release(std);
        }
    }

    private AutoencoderKL(VaeConfig config, DType dtype, DeviceSpec device, Encoder encoder, Decoder decoder, Conv2d quantConv,
                          Conv2d postQuantConv) {
        this.config = config;
        this.dtype = dtype;
        this.device = device;
        this.torchDevice = Native.keep(device.torchDevice());
        this.scaling = Native.keep(new Scalar(config.scalingFactor()));
        this.shift = config.shiftFactor() == null ? null : Native.keep(new Scalar(config.shiftFactor()));
        this.encoder = encoder;
        this.decoder = decoder;
        this.quant_conv = quantConv;
        this.post_quant_conv = postQuantConv;
    }

    // ---------------------------------------------------------------- loading

    /**
     * Loads a diffusers {@code vae/} folder, a model folder with {@code vae/} (else with {@code ae.safetensors}),
     * or a single file: diffusers-named, BFL/LDM-named ({@code ae.safetensors}), or a whole-pipeline file whose VAE
     * tensors carry a {@code first_stage_model.} / {@code vae.} prefix. A single file takes its configuration from
     * a {@code config.json} beside it when that describes an AutoencoderKL, else from its tensors
     * ({@link VaeConfig#detect(StateDict)}: 32 GroupNorm groups, FLUX's scaling for 16 latent channels).
     */
    public static AutoencoderKL load(Path folderOrFile, DType compute) {
        return load(folderOrFile, null, compute, DeviceSpec.CPU);
    }

    public static AutoencoderKL load(Path folderOrFile, DType compute, DeviceSpec device) {
        return load(folderOrFile, null, compute, device);
    }

    /**
     * As {@link #load(Path, DType)} with an explicit configuration (null: from config.json or the tensors), e.g.
     * {@link VaeConfig#sd3()} for SD3's VAE in a single file, whose scaling cannot be seen in the weights.
     */
    public static AutoencoderKL load(Path folderOrFile, VaeConfig config, DType compute, DeviceSpec device) {
        DType.checkCompute(compute);
        device.requireAvailable();
        Path weights = vaePath(folderOrFile);
        try (TensorSource source = WeightFiles.open(weights)) { // the tensors keep the mapping alive on their own
            StateDict sd = diffusersNamed(StateDict.of(source));
            VaeConfig c = config != null ? config : config(weights, sd);
            return fromStateDict(sd.onDevice(device), c, compute);
        }
    }

    /** The configuration {@link #load(Path, DType)} would use; reads config.json / headers only. */
    public static VaeConfig inspect(Path folderOrFile) {
        Path weights = vaePath(folderOrFile);
        try (TensorSource source = WeightFiles.open(weights)) {
            return config(weights, diffusersNamed(StateDict.of(source)));
        }
    }

    private static Path vaePath(Path path) {
        if (Files.isDirectory(path) && !Files.exists(path.resolve("config.json"))) {
            if (Files.isDirectory(path.resolve("vae"))) return path.resolve("vae");
            if (Files.isRegularFile(path.resolve("ae.safetensors"))) return path.resolve("ae.safetensors");
        }
        return path;
    }

    private static StateDict diffusersNamed(StateDict raw) {
        StateDict sd = VaeKeyMap.toDiffusers(raw);
        if (!sd.contains("decoder.conv_in.weight")) {
            String some = raw.keys().stream().limit(3).map(k -> "'" + k + "'").reduce((a, b) -> a + ", " + b).orElse("none");
            throw new ModelFormatException(raw.origin() + ": not an AutoencoderKL checkpoint: missing tensor 'decoder.conv_in.weight'"
                    + " (nor the BFL/LDM 'decoder.mid.block_1.*' layout); " + raw.keys().size() + " tensors, e.g. " + some);
        }
        return sd;
    }

    private static VaeConfig config(Path weights, StateDict sd) {
        if (Files.isDirectory(weights) && Files.exists(weights.resolve("config.json"))) {
            return VaeConfig.read(weights.resolve("config.json"));
        }
        if (Files.isRegularFile(weights)) {
            Path beside = weights.resolveSibling("config.json");
            if (Files.isRegularFile(beside) && describesAutoencoderKL(beside)) return VaeConfig.read(beside);
        }
        return VaeConfig.detect(sd);
    }

    private static boolean describesAutoencoderKL(Path configJson) {
        try {
            JsonNode c = new ObjectMapper().readTree(Files.readString(configJson));
            return c != null && c.path("_class_name").asText("").equals("AutoencoderKL");
        } catch (IOException | RuntimeException e) {
            return false;
        }
    }

    /** Builds the model from diffusers-named tensors; fails on missing, mis-shaped or unexpected tensors. */
    public static AutoencoderKL fromStateDict(StateDict sd, VaeConfig c, DType compute) {
        DType.checkCompute(compute);
        return Modules.loadingScoped(built -> {
            long latent = c.latentChannels();
            Encoder encoder = Modules.track(built, Encoder.load(sd, c, compute));
            Decoder decoder = Modules.track(built, Decoder.load(sd, c, Conv2d::same, MidBlockAttention::load,
                    (s, p, i, channels, dtype) -> i < c.numBlocks() - 1 ? Upsample2D.load(s, p, channels, dtype) : null, compute));
            Conv2d quant = c.useQuantConv() ? Modules.track(built, Conv2d.load(sd, "quant_conv", 2 * latent, 2 * latent, 1, 1, 0, compute)) : null;
            Conv2d postQuant = c.usePostQuantConv() ? Modules.track(built, Conv2d.load(sd, "post_quant_conv", latent, latent, 1, 1, 0, compute)) : null;
            sd.requireAllTaken();
            return new AutoencoderKL(c, compute, sd.device(), encoder, decoder, quant, postQuant);
        });
    }


    public VaeConfig config() { return config; }
    public DType dtype() { return dtype; }
    public DeviceSpec device() { return device; }

    // ---------------------------------------------------------------- decode

    /** The raw decoder output {@code [B, out, f·h, f·w]} of latents {@code [B, latent, h, w]} as given (no scaling). */
    public Tensor decode(Tensor latents) {
        check("latents", latents, config.latentChannels());
        try (InferenceMode guard = new InferenceMode(); PointerScope scope = new PointerScope()) {
            return decodeOwned(place(latents));
        }
    }

    /**
     * Decodes the transformer's (normalised) latents as the FLUX/SD3 pipelines do:
     * {@code decode(latents / scaling_factor + shift_factor)}, the scaling in the VAE dtype (see {@link #unscaleLatents}).
     */
    public Tensor decodeScaled(Tensor latents) {
        check("latents", latents, config.latentChannels());
        try (InferenceMode guard = new InferenceMode(); PointerScope scope = new PointerScope()) {
            return decodeOwned(unscale(place(latents)));
        }
    }

    /**
     * {@code latents / scaling_factor + shift_factor} (no shift when the config has none): the decoder input of
     * normalised latents, computed in the VAE dtype (the FLUX/SD3 pipelines hold the latents in that dtype, so a
     * bf16 VAE rounds each op here exactly as the reference does).
     */
    public Tensor unscaleLatents(Tensor latents) {
        check("latents", latents, config.latentChannels());
        try (InferenceMode guard = new InferenceMode(); PointerScope scope = new PointerScope()) {
            return Tensors.keep(unscale(place(latents)));
        }
    }

    /**
     * {@code (z - shift_factor) · scaling_factor} in the VAE dtype: encoder latents (e.g. a posterior mean or sample)
     * in the transformer's latent space, as img2img pipelines prepare them.
     */
    public Tensor scaleLatents(Tensor z) {
        check("latents", z, config.latentChannels());
        try (InferenceMode guard = new InferenceMode(); PointerScope scope = new PointerScope()) {
            Tensor placed = place(z);
            Tensor t = shift != null ? placed.sub(shift) : placed;
            return Tensors.keep(t.mul(scaling));
        }
    }

    private Tensor unscale(Tensor latents) {
        Tensor z = latents.div(scaling);
        return shift != null ? z.add(shift) : z;
    }

    /** post_quant_conv + decoder on placed latents; the result is owned (attached to no scope). */
    private Tensor decodeOwned(Tensor z) {
        if (post_quant_conv == null) return decoder.forward(z);
        return Scopes.then(Scopes.owned(() -> post_quant_conv.forward(z)), decoder::forward);
    }

    /**
     * Tiled decode in diffusers' manner ({@code AutoencoderKL.tiled_decode}): the latents are cut into
     * {@code tileLatent}² tiles starting every {@code tileLatent - overlapLatent} latents (the last ones may be
     * smaller), each tile is decoded on its own, and each tile is blended linearly into its upper and left
     * neighbours over {@code overlapLatent·f} pixels, then cropped to {@code (tileLatent - overlapLatent)·f} pixels.
     * Peak activation memory then depends on the tile, not on the image (the decoded tiles are kept until blended, as
     * in diffusers).
     *
     * <p><b>Tiling changes the numerics</b>: GroupNorm statistics and the mid-block attention only see one tile, so
     * the result differs from {@link #decode} (visibly so for small tiles). As in diffusers, latents that fit in one
     * tile are decoded untiled, bit-identical to {@link #decode}. diffusers' defaults are
     * {@link VaeConfig#defaultTileLatent()} and {@link VaeConfig#defaultOverlapLatent()} (128 and 32 for FLUX).
     */
    public Tensor decodeTiled(Tensor latents, int tileLatent, int overlapLatent) {
        check("latents", latents, config.latentChannels());
        if (tileLatent < 1 || overlapLatent < 0 || overlapLatent >= tileLatent) {
            throw new IllegalArgumentException("tile " + tileLatent + " and overlap " + overlapLatent
                    + " latents: need tile >= 1 and 0 <= overlap < tile");
        }
        long h = latents.size(2), w = latents.size(3);
        if (h <= tileLatent && w <= tileLatent) return decode(latents);
        int f = config.scaleFactor();
        int stride = tileLatent - overlapLatent;
        int blend = overlapLatent * f;
        int rowLimit = tileLatent * f - blend;
        try (InferenceMode guard = new InferenceMode(); PointerScope scope = new PointerScope()) {
            return Tensors.keep(TiledDecode.spatial(place(latents), 2, tileLatent, tileLatent, stride, stride, blend, blend,
                    rowLimit, rowLimit, this::decodeOwned));
        }
    }

    /** diffusers' default tiling ({@code enable_tiling()}): {@link VaeConfig#defaultTileLatent()}, {@link VaeConfig#defaultOverlapLatent()}. */
    public Tensor decodeTiled(Tensor latents) {
        return decodeTiled(latents, config.defaultTileLatent(), config.defaultOverlapLatent());
    }

    /**
     * Estimated peak bytes of live activations while {@code images} latents decode to {@code width}×{@code height} images
     * with {@link #decodeToImages} (weights excluded; an estimate for planning, not a measurement). The peak is at full
     * resolution: the last upsampler's output and the last up block's resnet input with its normed copy at the width
     * {@code c[1]}, and temporaries at {@code c[0]}, about {@code (3·c[1] + 2·c[0])·H·W} values per image; plus the mid
     * block's single-head attention scores over the latent tokens where the math kernel runs (not fp32), and the fp32
     * images. With the demo VAE (channels 8, 16) this is 17 MB per 256² image; peak RSS grew by 18 MB per image from a
     * batch of 1 to one of 32.
     */
    public static long decodePeakBytes(VaeConfig c, long images, int width, int height, DType dtype) {
        int[] ch = c.blockOutChannels();
        double pixels = (double) width * height, c0 = ch[0], c1 = ch[Math.min(1, ch.length - 1)];
        double perImage = (3 * c1 + 2 * c0) * pixels * dtype.bytes() + 2 * 3 * pixels * Float.BYTES;
        if (Torch.usesMathAttention(dtype)) {
            double tokens = pixels / ((double) c.scaleFactor() * c.scaleFactor());
            perImage += tokens * tokens * 4;
        }
        double total = perImage * images;
        return total >= Long.MAX_VALUE ? Long.MAX_VALUE : (long) total;
    }

    /** Normalised latents → images {@code [B, 3, H, W]} in [0, 1], fp32 on the CPU: {@link #decodeScaled} then {@link #toImage}. Owned by the caller. */
    public Tensor decodeToImages(Tensor latents) {
        try (PointerScope scope = new PointerScope()) {
            Tensor decoded = decodeScaled(latents);
            Tensor image = toImage(decoded);
            Tensor cpu = io.mmdit4j.runtime.Transfers.toHost(image, org.bytedeco.pytorch.global.torch.ScalarType.Float); // meta stays meta
            decoded.close();
            image.close();
            return Tensors.keep(cpu);
        }
    }

    /**
     * The pipelines' post-processing before uint8 ({@code VaeImageProcessor.postprocess(..., "pt")}):
     * {@code clamp(decoded·0.5 + 0.5, 0, 1)} in the VAE dtype.
     */
    public Tensor toImage(Tensor decoded) {
        if (decoded.dim() != 4) {
            throw new IllegalArgumentException("decoded image has shape " + Arrays.toString(Tensors.shape(decoded)) + ", expected [batch, channels, height, width]");
        }
        VaeTensors.requireFloating("decoded image", decoded);
        try (InferenceMode guard = new InferenceMode(); PointerScope scope = new PointerScope()) {
            return Tensors.keep(VaeTensors.toUnitRange(place(decoded)));
        }
    }

    // ---------------------------------------------------------------- encode

    /** The posterior of images {@code [B, in, H, W]} in [-1, 1]; latents are {@code [B, latent, ⌈H/f⌉, ⌈W/f⌉]}. */
    public Encoded encode(Tensor image) {
        check("image", image, config.inChannels());
        try (InferenceMode guard = new InferenceMode(); PointerScope scope = new PointerScope()) {
            Tensor x = place(image);
            Tensor moments = encoder.forward(x);
            if (quant_conv != null) moments = Scopes.then(moments, m -> Scopes.owned(() -> quant_conv.forward(m)));
            try {
                TensorVector halves = moments.chunk(2, 1);
                Tensor mean = halves.get(0).contiguous();
                Tensor logvar = clamp(halves.get(1), LOGVAR_MIN, LOGVAR_MAX);
                Tensor std = exp(logvar.mul(HALF));
                return new Encoded(Tensors.keep(mean), Tensors.keep(logvar), Tensors.keep(std));
            } finally {
                moments.close();
            }
        }
    }

    /**
     * The encoder's posterior {mean, logvar} of images [B, in, H, W] in [-1, 1] with autograd (no inference mode): for
     * training the VAE. Both owned by the caller.
     */
    public Tensor[] momentsWithGrad(Tensor image) {
        check("image", image, config.inChannels());
        try (PointerScope scope = new PointerScope()) {
            Tensor moments = Scopes.adopt(encoder.forward(place(image)));
            if (quant_conv != null) moments = quant_conv.forward(moments);
            TensorVector halves = moments.chunk(2, 1);
            return new Tensor[] {Tensors.keep(halves.get(0).contiguous()), Tensors.keep(clamp(halves.get(1), LOGVAR_MIN, LOGVAR_MAX))}; // get() borrows from the vector
        }
    }

    /** The raw decoder output of latents as given, with autograd (training the VAE); owned by the caller. */
    public Tensor decodeWithGrad(Tensor latents) {
        check("latents", latents, config.latentChannels());
        try (PointerScope scope = new PointerScope()) {
            return decodeOwned(place(latents));
        }
    }

    // ---------------------------------------------------------------- inputs

    private Tensor place(Tensor t) {
        return io.mmdit4j.runtime.Transfers.to(t, device, dtype.scalarType());
    }

    private static void check(String what, Tensor t, long channels) {
        VaeTensors.check(what, t, channels, "height", "width");
    }

    @Override
    public void close() {
        Modules.closeAll(Arrays.asList(encoder, decoder, quant_conv, post_quant_conv));
        Native.release(scaling);
        Native.release(shift);
        Native.release(torchDevice);
    }
}
