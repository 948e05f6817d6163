package io.mmdit4j.vae.wan;

import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.io.ParameterShapes;
import io.mmdit4j.io.StateDict;
import io.mmdit4j.io.TensorSource;
import io.mmdit4j.io.WeightFiles;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.Scopes;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.vae.AutoencoderKL;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.InferenceMode;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.function.BiConsumer;
import java.util.function.Supplier;

import static org.bytedeco.pytorch.global.torch.cat;
import static org.bytedeco.pytorch.global.torch.clamp;
import static org.bytedeco.pytorch.global.torch.exp;

/**
 * diffusers {@code AutoencoderKLWan} (the Wan 2.1 VAE of Wan 2.1 and Cosmos-Predict2). Decode path:
 * {@code post_quant_conv}, then the causal 3-D decoder run <b>one latent frame at a time</b> with its feature cache (frame 0
 * → 1 frame, each further latent frame → 4), output clamped to [−1, 1]: latents {@code [B, 16, F, h, w]} → video
 * {@code [B, 3, 1 + 4(F−1), 8h, 8w]}. Peak memory is one latent frame's activations plus the cache (the last two input frames
 * of every causal convolution, not kept after the last frame: an image decode keeps none). No tiling: at 768² one frame
 * peaks near 1.5 GB in fp32 (see {@code ./mmdit inspect --config cosmos-predict2-2b}).
 *
 * <p>Encode path ({@link #encode}): the causal 3-D encoder run on the first frame alone, then 4 frames at a time, with one
 * feature cache, then {@code quant_conv}; the posterior's mean, log-variance (clamped to [−30, 20]) and std: video
 * {@code [B, 3, 1 + 4k, H, W]} → {@code [B, 16, 1 + k, H/8, W/8]}. The encoder's weights ({@code encoder.*},
 * {@code quant_conv.*}) are read on the first encode, from the source the decoder came from, so decode-only users never
 * hold them; {@link #close} frees them with the decoder.
 *
 * <p>The pipeline's de-normalisation is {@link #denormalize}: {@code latents / (1/latents_std) / sigma_data + latents_mean}
 * per channel, as the COSMOS reference writes it; {@link #normalize} is its inverse for encoded latents.
 * Every returned tensor is owned by the caller.
 */
public final class AutoencoderKLWan implements AutoCloseable {
    private static final Scalar HALF = Native.keep(new Scalar(0.5));
    private static final ScalarOptional MINUS_ONE = Native.keep(new ScalarOptional(new Scalar(-1.0)));
    private static final ScalarOptional ZERO = Native.keep(new ScalarOptional(new Scalar(0.0)));
    private static final ScalarOptional ONE = Native.keep(new ScalarOptional(new Scalar(1.0)));
    private static final ScalarOptional LOGVAR_MIN = Native.keep(new ScalarOptional(new Scalar(-30.0)));
    private static final ScalarOptional LOGVAR_MAX = Native.keep(new ScalarOptional(new Scalar(20.0)));
    /** Frames per encoder chunk after the first frame (diffusers' {@code _encode}). */
    private static final int ENCODE_CHUNK = 4;

    private final WanVaeConfig config;
    private final DType dtype;
    private final DeviceSpec device;
    private final Device torchDevice;
    final WanCausalConv3d post_quant_conv;
    final WanDecoder3d decoder;

    /** Builds the encode path when the first encode needs it (see {@link #encoding()}). */
    private final Supplier<Encoding> encoderLoader;
    private final Object encoderLock = new Object();
    private volatile Encoding encoding; // null until the first encode
    private boolean closed;             // guarded by encoderLock

    /** The encode path: {@code encoder} and {@code quant_conv}. */
    private record Encoding(WanEncoder3d encoder, WanCausalConv3d quant_conv) implements AutoCloseable {
        static Encoding load(StateDict sd, WanVaeConfig c, DType compute) {
            if (!sd.isRecording() && !sd.contains("encoder.conv_in.weight")) {
                throw new ModelFormatException(sd.origin() + ": holds no VAE encoder: missing tensor 'encoder.conv_in.weight' (a decoder-only"
                        + " AutoencoderKLWan file; encoding an image or video needs the encoder.* and quant_conv.* tensors of the full VAE)");
            }
            return Modules.loadingScoped(built -> {
                WanEncoder3d enc = Modules.track(built, new WanEncoder3d(sd, c, compute));
                WanCausalConv3d quant = Modules.track(built, WanCausalConv3d.load(sd, "quant_conv", 2L * c.zDim(), 2L * c.zDim(), 1, 1, compute));
                for (String k : sd.keys()) if (!k.startsWith("encoder.") && !k.startsWith("quant_conv.")) sd.markIgnored(k);
                sd.requireAllTaken(); // an encoder tensor this layout has no place for
                return new Encoding(enc, quant);
            });
        }

        @Override
        public void close() {
            Modules.closeAll(encoder, quant_conv);
        }
    }

    private AutoencoderKLWan(WanVaeConfig config, DType dtype, DeviceSpec device, WanCausalConv3d postQuant, WanDecoder3d decoder,
                             Supplier<Encoding> encoderLoader) {
        this.config = config;
        this.dtype = dtype;
        this.device = device;
        this.torchDevice = Native.keep(device.torchDevice());
        this.post_quant_conv = postQuant;
        this.decoder = decoder;
        this.encoderLoader = encoderLoader;
    }

    /** A diffusers {@code vae/} folder (or a model folder with {@code vae/}): config.json and safetensors weights. */
    public static AutoencoderKLWan load(Path folder, DType compute, DeviceSpec device) {
        DType.checkCompute(compute);
        device.requireAvailable();
        Path dir = Files.isDirectory(folder) && !Files.exists(folder.resolve("config.json")) && Files.isDirectory(folder.resolve("vae"))
                ? folder.resolve("vae") : folder;
        if (!Files.isRegularFile(dir.resolve("config.json"))) throw new ModelFormatException(dir + ": no config.json (expected a diffusers AutoencoderKLWan folder)");
        WanVaeConfig c = WanVaeConfig.read(dir.resolve("config.json"));
        Supplier<Encoding> encoder = () -> { // the same weights again, when the first encode needs them
            try (TensorSource source = WeightFiles.open(dir)) {
                return Encoding.load(StateDict.of(source).onDevice(device), c, compute);
            }
        };
        try (TensorSource source = WeightFiles.open(dir)) {
            return fromStateDict(StateDict.of(source).onDevice(device), c, compute, encoder);
        }
    }

    /** The config of a VAE folder (headers only). */
    public static WanVaeConfig inspect(Path folder) {
        Path dir = Files.isDirectory(folder.resolve("vae")) && !Files.exists(folder.resolve("config.json")) ? folder.resolve("vae") : folder;
        return WanVaeConfig.read(dir.resolve("config.json"));
    }

    /**
     * Builds the decode path from diffusers-named tensors; fails on missing, mis-shaped or unexpected (non-encoder) tensors.
     * The encoder is built from {@code sd} on the first {@link #encode}: its source must still be open then (a recording
     * always is; {@link #load} reopens the folder instead).
     */
    public static AutoencoderKLWan fromStateDict(StateDict sd, WanVaeConfig c, DType compute) {
        return fromStateDict(sd, c, compute, () -> Encoding.load(sd, c, compute));
    }

    private static AutoencoderKLWan fromStateDict(StateDict sd, WanVaeConfig c, DType compute, Supplier<Encoding> encoder) {
        DType.checkCompute(compute);
        if (!sd.isRecording() && !sd.contains("decoder.conv_in.weight")) {
            throw new ModelFormatException(sd.origin() + ": not an AutoencoderKLWan checkpoint: missing tensor 'decoder.conv_in.weight'");
        }
        return Modules.loadingScoped(built -> {
            WanCausalConv3d post = Modules.track(built, WanCausalConv3d.load(sd, "post_quant_conv", c.zDim(), c.zDim(), 1, 1, compute));
            WanDecoder3d dec = Modules.track(built, new WanDecoder3d(sd, c, compute));
            for (String k : sd.keys()) if (k.startsWith("encoder.") || k.startsWith("quant_conv.")) sd.markIgnored(k);
            sd.requireAllTaken();
            return new AutoencoderKLWan(c, compute, sd.device(), post, dec, encoder);
        });
    }

    /** A shapes-only model on the meta device: real-size dry runs. */
    public static AutoencoderKLWan meta(WanVaeConfig c, DType compute) {
        return fromStateDict(StateDict.recording("meta AutoencoderKLWan " + c), c, compute);
    }

    /** The decode path's tensors (names, shapes, load order), recorded from the loader. */
    public static Map<String, long[]> decoderShapes(WanVaeConfig c) {
        return ParameterShapes.of("AutoencoderKLWan " + c, sd -> fromStateDict(sd, c, DType.F32));
    }

    /** The encode path's tensors ({@code encoder.*}, {@code quant_conv.*}: names, shapes, load order), recorded from the loader. */
    public static Map<String, long[]> encoderShapes(WanVaeConfig c) {
        return ParameterShapes.of("AutoencoderKLWan encoder " + c, sd -> Encoding.load(sd, c, DType.F32));
    }

    /**
     * An estimate of the decode's peak activation bytes for one latent frame of {@code h × w} (an image): per decoder stage the
     * live tensors of a residual block (its input, the normalised input, the conv output, the second conv's input and output)
     * and of an upsampler (input, the ×2 copy, the conv output), at that stage's channels and resolution; the largest stage.
     */
    public static double peakActivationBytes(WanVaeConfig c, DType dtype, long batch, long h, long w) {
        int[] mult = c.dimMult();
        int n = mult.length;
        double bytes = dtype.bytes() * (double) batch, peak = 0;
        long res = h * w;
        long channels = (long) c.decoderBaseDim() * mult[n - 1];
        peak = Math.max(peak, 5.0 * channels * res * bytes);
        for (int i = 0; i < n; i++) {
            long in = i > 0 ? channels / 2 : channels, out = (long) c.decoderBaseDim() * mult[n - 1 - i];
            peak = Math.max(peak, 5.0 * Math.max(in, out) * res * bytes);
            if (i != n - 1) {
                peak = Math.max(peak, (out * res + out * 4 * res + out / 2 * 4 * res) * bytes);
                res *= 4;
            }
            channels = out;
        }
        return peak;
    }

    public WanVaeConfig config() { return config; }
    public DType dtype() { return dtype; }
    public DeviceSpec device() { return device; }

    private Tensor place(Tensor t) {
        return device.isCpu() ? t.to(dtype.scalarType()) : io.mmdit4j.runtime.Transfers.to(t, device, dtype.scalarType());
    }

    /**
     * The decoder input of normalised latents: {@code latents / (1/latents_std) / sigma_data + latents_mean} per channel,
     * in the VAE dtype (the COSMOS reference's op order).
     */
    public Tensor denormalize(Tensor latents, double sigmaData) {
        check(latents);
        try (InferenceMode guard = new InferenceMode(); PointerScope scope = new PointerScope()) {
            Tensor x = place(latents);
            Tensor std = channels(config.latentsStd());
            Tensor mean = channels(config.latentsMean());
            Tensor invStd = std.to(x.scalar_type()).reciprocal(); // 1.0 / std.to(latents.dtype), as the reference writes it
            return Tensors.keep(x.div(invStd).div(new Scalar(sigmaData)).add(mean.to(x.scalar_type())));
        }
    }

    /**
     * Encoded latents normalised for the transformer: {@code (mean − latents_mean) / latents_std · sigma_data} per channel
     * (diffusers' Cosmos2 pipelines), in the VAE dtype on its device; the inverse of {@link #denormalize}. Caller-owned.
     */
    public Tensor normalize(Tensor mean, double sigmaData) {
        check(mean);
        try (InferenceMode guard = new InferenceMode(); PointerScope scope = new PointerScope()) {
            Tensor x = place(mean);
            Tensor m = channels(config.latentsMean()).to(x.scalar_type());
            Tensor std = channels(config.latentsStd()).to(x.scalar_type());
            return Tensors.keep(x.sub(m).div(std).mul(new Scalar(sigmaData)));
        }
    }

    private Tensor channels(double[] v) {
        float[] f = new float[v.length];
        for (int i = 0; i < v.length; i++) f[i] = (float) v[i];
        Tensor t = Tensors.fromFloats(f, 1, v.length, 1, 1, 1);
        return device.isCpu() ? t : io.mmdit4j.runtime.Transfers.to(t, device, ScalarType.Float);
    }

    /** {@code decode(z).sample}: the decoder output {@code [B, 3, 1 + 4(F−1), 8h, 8w]}, clamped to [−1, 1]. */
    public Tensor decode(Tensor z) {
        return decode(z, null);
    }

    /**
     * {@link #decode(Tensor)} handing intermediates to {@code observer} ({@code post_quant_conv_out},
     * {@code decoder_mid_block_out_chunk<i>}), borrowed.
     */
    public Tensor decode(Tensor z, BiConsumer<String, Tensor> observer) {
        check(z);
        try (InferenceMode guard = new InferenceMode(); PointerScope scope = new PointerScope(); FeatureCache cache = new FeatureCache()) {
            Tensor x = Scopes.owned(() -> post_quant_conv.forward(place(z), null));
            if (observer != null) observer.accept("post_quant_conv_out", x);
            long frames = x.size(2);
            List<Tensor> outs = new ArrayList<>();
            try {
                for (int i = 0; i < frames; i++) {
                    cache.rewind();
                    cache.keep = i < frames - 1; // the last frame's context is never read
                    int chunk = i;
                    Tensor frame = x.narrow(2, i, 1);
                    outs.add(decoder.forward(frame, cache, observer == null ? null : (name, t) -> observer.accept(name + "_chunk" + chunk, t)));
                }
                Tensor all = outs.size() == 1 ? outs.get(0) : cat(new TensorVector(outs.toArray(new Tensor[0])), 2);
                return Tensors.keep(all.is_meta() ? all.clone() : clamp(all, MINUS_ONE, ONE));
            } finally {
                outs.forEach(Native::release);
                x.close();
            }
        }
    }

    /**
     * {@code encode(video).latent_dist}: video {@code [B, 3, F, H, W]} in [−1, 1] (any float dtype, on the host or the VAE's
     * device) with {@code F = 1 + 4k} and H, W multiples of 8 → the posterior, {@code [B, z, 1 + k, H/8, W/8]} in the VAE dtype
     * (owned by the record). The first frame is encoded alone, then 4 frames at a time, all through one feature cache; the
     * first call reads the encoder's weights (a file without them fails here, naming it and the missing tensor). On a
     * {@link #meta} VAE a shapes-only dry run.
     */
    public AutoencoderKL.Encoded encode(Tensor video) {
        checkVideo(video);
        Encoding enc = encoding();
        try (InferenceMode guard = new InferenceMode(); PointerScope scope = new PointerScope(); FeatureCache cache = new FeatureCache()) {
            Tensor x = place(video);
            long frames = x.size(2);
            long chunks = 1 + (frames - 1) / ENCODE_CHUNK;
            List<Tensor> outs = new ArrayList<>();
            try {
                for (long i = 0; i < chunks; i++) {
                    cache.rewind();
                    cache.keep = i < chunks - 1; // the last chunk's context is never read
                    Tensor chunk = i == 0 ? x.narrow(2, 0, 1) : x.narrow(2, 1 + ENCODE_CHUNK * (i - 1), ENCODE_CHUNK);
                    outs.add(enc.encoder().forward(chunk, cache));
                }
                Tensor all = outs.size() == 1 ? outs.get(0) : cat(new TensorVector(outs.toArray(new Tensor[0])), 2);
                Tensor moments = enc.quant_conv().forward(all, null);
                TensorVector halves = moments.chunk(2, 1);
                Tensor mean = halves.get(0).contiguous();
                Tensor logvar = moments.is_meta() ? halves.get(1).contiguous() : clamp(halves.get(1), LOGVAR_MIN, LOGVAR_MAX);
                Tensor std = exp(logvar.mul(HALF));
                return new AutoencoderKL.Encoded(Tensors.keep(mean), Tensors.keep(logvar), Tensors.keep(std));
            } finally {
                outs.forEach(Native::release);
            }
        }
    }

    /** The encode path, loaded once (thread-safe) on first use. */
    private Encoding encoding() {
        Encoding e = encoding;
        if (e != null) return e;
        synchronized (encoderLock) {
            if (closed) throw new IllegalStateException("this AutoencoderKLWan is closed");
            if (encoding == null) encoding = encoderLoader.get();
            return encoding;
        }
    }

    /** Whether the encoder's weights have been read (by a first {@link #encode}). */
    public boolean encoderLoaded() {
        return encoding != null;
    }

    private void checkVideo(Tensor v) {
        int s = config.spatialCompression();
        String expected = "expected [B, " + WanEncoder3d.IN_CHANNELS + ", F, H, W] with F = 1 + 4k frames and H, W multiples of " + s;
        if (v == null || v.isNull()) throw new IllegalArgumentException("video is null, " + expected);
        long[] shape = Tensors.shape(v);
        String got = "video has shape " + Arrays.toString(shape) + ", ";
        if (shape.length != 5) throw new IllegalArgumentException(got + expected + " (rank 5, got rank " + shape.length + ")");
        if (shape[0] < 1) throw new IllegalArgumentException(got + expected + " (batch of at least 1)");
        if (shape[1] != WanEncoder3d.IN_CHANNELS) {
            throw new IllegalArgumentException(got + expected + " (" + WanEncoder3d.IN_CHANNELS + " channels, got " + shape[1] + ")");
        }
        if (shape[2] < 1 || (shape[2] - 1) % ENCODE_CHUNK != 0) {
            throw new IllegalArgumentException(got + expected + " (frames 1, 5, 9, ..., got " + shape[2] + ")");
        }
        if (shape[3] < s || shape[3] % s != 0 || shape[4] < s || shape[4] % s != 0) {
            throw new IllegalArgumentException(got + expected + " (height and width multiples of " + s + ", got " + shape[3] + " × " + shape[4] + ")");
        }
        io.mmdit4j.vae.VaeTensors.requireFloating("video", v);
    }

    /** {@code clamp(decoded/2 + 0.5, 0, 1)} permuted to {@code [B, F, 3, H, W]} ({@code VideoProcessor.postprocess_video}, "pt"). */
    public Tensor toVideo(Tensor decoded) {
        if (decoded == null || decoded.dim() != 5) throw new IllegalArgumentException("decoded video must be [B, C, F, H, W]");
        try (InferenceMode guard = new InferenceMode(); PointerScope scope = new PointerScope()) {
            return Tensors.keep(clamp(decoded.mul(HALF).add(HALF), ZERO, ONE).permute(0, 2, 1, 3, 4).contiguous());
        }
    }

    /** Normalised latents {@code [B, 16, 1, h, w]} → images {@code [B, 3, 8h, 8w]} in [0, 1], fp32 on the CPU (frame 0). */
    public Tensor decodeToImages(Tensor latents, double sigmaData) {
        try (PointerScope scope = new PointerScope()) {
            // each step hands out an owned tensor: to this scope, which frees it
            Tensor z = io.mmdit4j.runtime.Scopes.adopt(denormalize(latents, sigmaData));
            Tensor decoded = io.mmdit4j.runtime.Scopes.adopt(decode(z));
            Tensor video = io.mmdit4j.runtime.Scopes.adopt(toVideo(decoded));
            return Tensors.keep(io.mmdit4j.runtime.Transfers.toHost(video.select(1, 0), ScalarType.Float).contiguous()); // meta stays meta
        }
    }

    private void check(Tensor z) {
        if (z == null || z.isNull() || z.dim() != 5 || z.size(1) != config.zDim() || z.size(2) < 1 || z.size(3) < 1 || z.size(4) < 1) {
            throw new IllegalArgumentException("latents have shape " + (z == null || z.isNull() ? "null" : Arrays.toString(Tensors.shape(z)))
                    + ", expected [B, " + config.zDim() + ", F, h, w]");
        }
    }

    @Override
    public void close() {
        synchronized (encoderLock) {
            closed = true;
            Modules.closeQuietly(encoding);
            encoding = null;
        }
        Modules.closeAll(post_quant_conv, decoder);
        Native.release(torchDevice);
    }
}
