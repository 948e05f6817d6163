package io.mmdit4j.hunyuan.vae;

import io.mmdit4j.vae.AutoencoderKL;
import io.mmdit4j.vae.Decoder;
import io.mmdit4j.vae.MidBlockAttention;
import io.mmdit4j.vae.TiledDecode;
import io.mmdit4j.vae.VaeTensors;
import com.fasterxml.jackson.databind.JsonNode;
import io.mmdit4j.io.JsonConfigs;
import io.mmdit4j.io.ModelFormatException;
import io.mmdit4j.io.ParameterShapes;
import io.mmdit4j.io.StateDict;
import io.mmdit4j.io.TensorSource;
import io.mmdit4j.io.WeightFiles;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.runtime.Scopes;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.InferenceMode;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.function.BiConsumer;
import java.util.function.Function;

import static org.bytedeco.pytorch.global.torch.cat;
import static org.bytedeco.pytorch.global.torch.clamp;
import static org.bytedeco.pytorch.global.torch.exp;

/**
 * diffusers {@code AutoencoderKLHunyuanVideo} (v0.32.2). Decode path: {@code post_quant_conv} (1×1×1 Conv3d), then the
 * causal 3-D decoder ({@link Decoder} over {@link CausalConv3d}), latents {@code [B, 16, F', h, w]} → video
 * {@code [B, 3, 1 + 4(F'−1), 8h, 8w]} in about [−1, 1] (unclamped). Encode path ({@link #encode}): the causal 3-D encoder
 * ({@link EncoderCausal3D}), then {@code quant_conv}, video {@code [B, 3, 4k+1, H, W]} → the posterior
 * ({@link AutoencoderKL.Encoded}) over latents {@code [B, 16, k+1, H/8, W/8]}. Loads a diffusers {@code vae/} folder (or a
 * model folder containing {@code vae/}, or a diffusers-named single file). The encoder's tensors ({@code encoder.*},
 * {@code quant_conv.*}) are read only on the first encode, from the same source, so decode-only (text-to-video) use
 * never holds them; a decoder-only file loads and decodes, and fails on encode. Any other unknown tensor is reported
 * at load. fp32 and bf16 (and fp16) compute; everything runs in the VAE's dtype, as the pipeline does.
 *
 * <p><b>Scaling is the caller's (pipeline's) side</b>, as in diffusers: {@code HunyuanVideoPipeline} decodes
 * {@code vae.decode(latents.to(vae.dtype) / scaling_factor)} (no shift). {@link #decode} takes the already un-scaled
 * decoder input; {@link #unscaleLatents} / {@link #decodeScaled} do the pipeline's division in the VAE dtype, and
 * {@link #toVideo} its post-processing.
 *
 * <p><b>Tiling</b> ({@link Tiling}) mirrors diffusers' {@code _temporal_tiled_decode} (frame chunks of
 * {@code tile_sample_min_num_frames/4 + 1} latent frames every {@code tile_sample_stride_num_frames/4}, each chunk's
 * first decoded frame dropped after the first chunk, overlapping frames blended linearly) and {@code tiled_decode}
 * (spatial tiles of {@code tile_sample_min/8} latents every {@code tile_sample_stride/8}, blended linearly over
 * {@code min − stride} pixels into the upper and left neighbours). It changes the numerics: each chunk/tile has its
 * own GroupNorm statistics and attention context, causal padding restarts at every chunk, and seams are blended,
 * so a tiled decode is <em>not</em> bit-identical to {@link #decode}. How far it moves depends on the model, the
 * latents and the CPU: white-noise latents through the random tiny test model with 32-pixel tiles differ by up to ~5
 * (mean ~0.5) on outputs reaching ±4, the per-tile GroupNorm statistics dominating, and even constant latents (a
 * constant video in exact arithmetic) differ by 0.01–0.3 depending on the CPU's kernels, as every GroupNorm of a
 * near-constant input amplifies the rounding of its mean up to 1/sqrt(eps) = 1000 times (see
 * {@code HunyuanVideoVaeTilingTest}, which checks the tiling itself bit for bit against diffusers' algorithm; the real
 * model on real latents with 256-pixel tiles is what diffusers' defaults are tuned for). Inputs that fit in one tile/chunk are decoded untiled, bit-identical to
 * {@link #decode}. As in diffusers, all decoded chunks/tiles are kept until blended (see {@link #plan}). diffusers' default model state is {@link Tiling#DIFFUSERS_DEFAULT}
 * (frame-wise decoding on, spatial tiling off); {@code vae.enable_tiling()} is {@link Tiling#ENABLED}.
 *
 * <p>Every returned tensor is owned by the caller.
 */
public final class AutoencoderKLHunyuanVideo implements AutoCloseable {
    private final HunyuanVideoVaeConfig config;
    private final DType dtype;
    private final DeviceSpec device;
    private final Device torchDevice;
    private final Scalar scaling;

    final CausalConv3d post_quant_conv; // kernel 1: no padding, a plain Conv3d (keys post_quant_conv.weight/bias)
    final Decoder decoder;

    private static final Scalar HALF = Native.keep(new Scalar(0.5));
    private static final ScalarOptional LOGVAR_MIN = Native.keep(new ScalarOptional(new Scalar(-30.0)));
    private static final ScalarOptional LOGVAR_MAX = Native.keep(new ScalarOptional(new Scalar(20.0)));

    /** Where the encoder half is read from on the first encode: runs the build on those tensors (and closes them after). */
    @FunctionalInterface
    private interface EncoderSource {
        EncoderPart open(Function<StateDict, EncoderPart> build);
    }

    /** The encode path's modules, {@code encoder.*} and {@code quant_conv.*} (a 1×1×1 Conv3d over 2·latent channels). */
    private record EncoderPart(EncoderCausal3D encoder, CausalConv3d quant_conv) implements AutoCloseable {
        @Override
        public void close() {
            Modules.closeAll(Arrays.asList(encoder, quant_conv));
        }
    }

    private final EncoderSource encoderSource;
    private final Object encoderLock = new Object();
    private volatile EncoderPart encoderPart; // null until the first encode
    private boolean closed;                   // guarded by encoderLock

    /**
     * diffusers' tiling options, in video pixels/frames as {@code enable_tiling(...)} takes them; decode and encode use the
     * same ones, as diffusers does.
     *
     * @param framewise      {@code use_framewise_decoding}: chunk the latent frames when there are more than {@code minFrames/4}
     *                       (decode), and the video frames when there are more than {@code minFrames} (encode: diffusers 0.32.2
     *                       tests this flag there too, not {@code use_framewise_encoding})
     * @param spatial        {@code use_tiling}: cut H/W into tiles when the latents exceed {@code minHeight/8} or {@code minWidth/8}
     *                       (decode), or the video {@code minHeight} or {@code minWidth} pixels (encode)
     * @param minHeight      {@code tile_sample_min_height} (256)
     * @param minWidth       {@code tile_sample_min_width} (256)
     * @param minFrames      {@code tile_sample_min_num_frames} (16)
     * @param strideHeight   {@code tile_sample_stride_height} (192)
     * @param strideWidth    {@code tile_sample_stride_width} (192)
     * @param strideFrames   {@code tile_sample_stride_num_frames} (12)
     */
    public record Tiling(boolean framewise, boolean spatial, int minHeight, int minWidth, int minFrames, int strideHeight,
                         int strideWidth, int strideFrames) {
        /** No tiling at all: one pass over the whole latent video (the golden reference's path at its sizes). */
        public static final Tiling NONE = new Tiling(false, false, 256, 256, 16, 192, 192, 12);
        /** A freshly constructed diffusers model: frame-wise decoding on, spatial tiling off. */
        public static final Tiling DIFFUSERS_DEFAULT = new Tiling(true, false, 256, 256, 16, 192, 192, 12);
        /** After {@code vae.enable_tiling()} with default sizes. */
        public static final Tiling ENABLED = new Tiling(true, true, 256, 256, 16, 192, 192, 12);

        public Tiling {
            if (minHeight < 1 || minWidth < 1 || minFrames < 1 || strideHeight < 1 || strideWidth < 1 || strideFrames < 1) {
                throw new IllegalArgumentException("tile sizes and strides must be >= 1, got min " + minHeight + "x" + minWidth + "x" + minFrames
                        + " frames, stride " + strideHeight + "x" + strideWidth + "x" + strideFrames + " frames");
            }
            if (strideHeight > minHeight || strideWidth > minWidth || strideFrames > minFrames) {
                throw new IllegalArgumentException("tile strides " + strideHeight + "x" + strideWidth + "x" + strideFrames
                        + " must not exceed the tile sizes " + minHeight + "x" + minWidth + "x" + minFrames + " (tiles must overlap or touch)");
            }
        }

        /** Spatial and frame-wise tiling with the given sizes (in pixels and frames). */
        public static Tiling of(int minHeight, int minWidth, int minFrames, int strideHeight, int strideWidth, int strideFrames) {
            return new Tiling(true, true, minHeight, minWidth, minFrames, strideHeight, strideWidth, strideFrames);
        }

        void check(HunyuanVideoVaeConfig c) {
            int s = c.spatialCompressionRatio(), t = c.temporalCompressionRatio();
            if (spatial && (minHeight / s < 1 || minWidth / s < 1 || strideHeight / s < 1 || strideWidth / s < 1)) {
                throw new IllegalArgumentException("spatial tile " + minHeight + "x" + minWidth + " and stride " + strideHeight + "x" + strideWidth
                        + " pixels must be at least " + s + " (one latent)");
            }
            if (framewise && (minFrames / t < 1 || strideFrames / t < 1)) {
                throw new IllegalArgumentException("frame tile " + minFrames + " and stride " + strideFrames + " must be at least " + t + " frames (one latent frame)");
            }
        }
    }

    private AutoencoderKLHunyuanVideo(HunyuanVideoVaeConfig config, DType dtype, DeviceSpec device, CausalConv3d postQuantConv, Decoder decoder,
                                      EncoderSource encoderSource) {
        this.config = config;
        this.encoderSource = encoderSource;
        this.dtype = dtype;
        this.device = device;
        this.torchDevice = Native.keep(device.torchDevice());
        this.scaling = Native.keep(new Scalar(config.scalingFactor()));
        this.post_quant_conv = postQuantConv;
        this.decoder = decoder;
    }

    // ---------------------------------------------------------------- loading

    public static AutoencoderKLHunyuanVideo load(Path folderOrFile, DType compute) {
        return load(folderOrFile, null, compute, DeviceSpec.CPU);
    }

    /**
     * Loads a diffusers {@code vae/} folder, a model folder with {@code vae/}, or a diffusers-named single file. The
     * config is {@code config} when given, else the folder's (or the file's neighbouring) {@code config.json}, else
     * {@link HunyuanVideoVaeConfig#hunyuanVideo()}; every tensor shape is checked against it.
     */
    public static AutoencoderKLHunyuanVideo load(Path folderOrFile, HunyuanVideoVaeConfig config, DType compute, DeviceSpec device) {
        DType.checkCompute(compute);
        device.requireAvailable();
        Path weights = folderOrFile;
        if (Files.isDirectory(weights) && !Files.exists(weights.resolve("config.json")) && Files.isDirectory(weights.resolve("vae"))) {
            weights = weights.resolve("vae");
        }
        HunyuanVideoVaeConfig c = config != null ? config : config(weights);
        Path from = weights;
        EncoderSource reopen = build -> { // the encoder half, read on the first encode from the same file(s)
            try (TensorSource source = WeightFiles.open(from)) {
                return build.apply(StateDict.of(source).onDevice(device));
            }
        };
        try (TensorSource source = WeightFiles.open(weights)) {
            return fromStateDict(StateDict.of(source).onDevice(device), c, compute, reopen);
        }
    }

    private static HunyuanVideoVaeConfig config(Path weights) {
        Path json = Files.isDirectory(weights) ? weights.resolve("config.json") : weights.resolveSibling("config.json");
        if (Files.isRegularFile(json)) {
            JsonNode c = JsonConfigs.readObject(json);
            if (Files.isDirectory(weights) || c.path("_class_name").asText("").equals("AutoencoderKLHunyuanVideo")) {
                return HunyuanVideoVaeConfig.fromJson(c, json.toString());
            }
        }
        return HunyuanVideoVaeConfig.hunyuanVideo();
    }

    /**
     * Builds the decoder from diffusers-named tensors; fails on missing, mis-shaped or unexpected (non-encoder) tensors.
     * The encoder half is built from {@code sd} on the first {@link #encode}, so {@code sd}'s source must still be open
     * then (or use {@link #load}, which reopens the file); a recording gives a shapes-only encoder.
     */
    public static AutoencoderKLHunyuanVideo fromStateDict(StateDict sd, HunyuanVideoVaeConfig c, DType compute) {
        return fromStateDict(sd, c, compute, build -> build.apply(sd.isRecording() ? StateDict.recording(sd.origin()) : sd));
    }

    private static AutoencoderKLHunyuanVideo fromStateDict(StateDict sd, HunyuanVideoVaeConfig c, DType compute, EncoderSource encoder) {
        DType.checkCompute(compute);
        if (!sd.isRecording() && !sd.contains("decoder.conv_in.conv.weight")) {
            String some = sd.keys().stream().limit(3).map(k -> "'" + k + "'").reduce((a, b) -> a + ", " + b).orElse("none");
            throw new ModelFormatException(sd.origin() + ": not an AutoencoderKLHunyuanVideo checkpoint: missing tensor 'decoder.conv_in.conv.weight'; "
                    + sd.keys().size() + " tensors, e.g. " + some);
        }
        return Modules.loadingScoped(built -> {
            long latent = c.latentChannels();
            CausalConv3d postQuant = Modules.track(built, Modules.weightAndBias(sd, "post_quant_conv", compute,
                    (w, b) -> new CausalConv3d(w, b, 1, 1), latent, latent, 1, 1, 1));
            Decoder decoder = Modules.track(built, Decoder.load(sd, c, CausalConv3d::load, MidBlockAttention::loadCausal,
                    (s, p, i, channels, dtype) -> UpsampleCausal3D.load(s, p, c, i, channels, dtype), compute));
            for (String k : sd.keys()) { // the encoder half: accepted here, loaded on the first encode
                if (isEncoderKey(k)) sd.markIgnored(k);
            }
            sd.requireAllTaken();
            return new AutoencoderKLHunyuanVideo(c, compute, sd.device(), postQuant, decoder, encoder);
        });
    }

    private static boolean isEncoderKey(String k) {
        return k.startsWith("encoder.") || k.startsWith("quant_conv.");
    }

    /** A shapes-only model on the meta device (no weight memory): real-size dry runs of the decode and the encode. */
    public static AutoencoderKLHunyuanVideo meta(HunyuanVideoVaeConfig config, DType compute) {
        return fromStateDict(StateDict.recording("meta AutoencoderKLHunyuanVideo"), config, compute);
    }

    /**
     * Names and shapes of the tensors the decode path loads ({@code post_quant_conv.*}, {@code decoder.*}), in load order:
     * what {@link #fromStateDict} takes, recorded on meta tensors.
     */
    public static Map<String, long[]> decoderShapes(HunyuanVideoVaeConfig c) {
        return ParameterShapes.of("AutoencoderKLHunyuanVideo parameters", sd -> fromStateDict(sd, c, DType.F32));
    }

    /** Parameters of the decode path ({@link #decoderShapes}); weight bytes are this times the dtype's size. */
    public static long decoderParameterCount(HunyuanVideoVaeConfig c) {
        return ParameterShapes.count(decoderShapes(c));
    }

    /**
     * Names and shapes of the tensors the encode path loads ({@code encoder.*}, {@code quant_conv.*}), in load order,
     * recorded on meta tensors.
     */
    public static Map<String, long[]> encoderShapes(HunyuanVideoVaeConfig c) {
        return ParameterShapes.of("AutoencoderKLHunyuanVideo encoder parameters", sd -> buildEncoder(sd, c, DType.F32));
    }

    public HunyuanVideoVaeConfig config() { return config; }
    public DType dtype() { return dtype; }
    public DeviceSpec device() { return device; }

    // ---------------------------------------------------------------- decode

    /** The raw decoder output {@code [B, out, 1 + 4(F'−1), 8h, 8w]} of decoder input {@code [B, latent, F', h, w]}, untiled. */
    public Tensor decode(Tensor z) {
        return decode(z, Tiling.NONE);
    }

    /** As {@link #decode(Tensor)} with diffusers' frame-wise / spatial tiling (see the class comment for the numerics). */
    public Tensor decode(Tensor z, Tiling tiling) {
        check("latents", z, config.latentChannels());
        tiling.check(config);
        try (InferenceMode guard = new InferenceMode(); PointerScope scope = new PointerScope()) {
            return dispatch(place(z), tiling);
        }
    }

    /** {@code decode(latents / scaling_factor)} as {@code HunyuanVideoPipeline} decodes the transformer's latents. */
    public Tensor decodeScaled(Tensor latents, Tiling tiling) {
        check("latents", latents, config.latentChannels());
        tiling.check(config);
        try (InferenceMode guard = new InferenceMode(); PointerScope scope = new PointerScope()) {
            return dispatch(place(latents).div(scaling), tiling);
        }
    }

    /** {@code latents / scaling_factor} in the VAE dtype: the pipeline's decoder input (no shift). */
    public Tensor unscaleLatents(Tensor latents) {
        check("latents", latents, config.latentChannels());
        try (InferenceMode guard = new InferenceMode(); PointerScope scope = new PointerScope()) {
            return Tensors.keep(place(latents).div(scaling));
        }
    }

    /**
     * {@code VideoProcessor.postprocess_video(decoded, "pt")}: {@code clamp(decoded/2 + 0.5, 0, 1)} in the VAE dtype,
     * permuted to frames first, {@code [B, F, C, H, W]}.
     */
    public Tensor toVideo(Tensor decoded) {
        if (decoded == null || decoded.isNull() || decoded.dim() != 5) {
            throw new IllegalArgumentException("decoded video has shape " + (decoded == null || decoded.isNull() ? "null" : Arrays.toString(Tensors.shape(decoded)))
                    + ", expected [batch, channels, frames, height, width]");
        }
        try (InferenceMode guard = new InferenceMode(); PointerScope scope = new PointerScope()) {
            return Tensors.keep(VaeTensors.toUnitRange(place(decoded)).permute(0, 2, 1, 3, 4).contiguous());
        }
    }

    /**
     * The untiled decode handing intermediates to {@code observer} as they are produced ({@code post_quant_conv_out},
     * {@code decoder_conv_in_out}, {@code decoder_mid_block_out}, {@code decoder_up_block_<i>_out}); the observer
     * borrows each tensor and must copy what it keeps. For diagnosis against the golden debug tensors.
     */
    public Tensor decodeObserved(Tensor z, BiConsumer<String, Tensor> observer) {
        check("latents", z, config.latentChannels());
        try (InferenceMode guard = new InferenceMode(); PointerScope scope = new PointerScope()) {
            Tensor placed = place(z);
            Tensor post = Scopes.owned(() -> post_quant_conv.forward(placed));
            observer.accept("post_quant_conv_out", post);
            return Scopes.then(post, p -> decoder.forward(p, observer));
        }
    }

    /** diffusers {@code _decode}: frame-wise first, then spatial tiling, else one pass. Owned result. */
    private Tensor dispatch(Tensor z, Tiling t) {
        long frames = z.size(2), h = z.size(3), w = z.size(4);
        if (t.framewise() && frames > t.minFrames() / config.temporalCompressionRatio()) return temporalTiledDecode(z, t);
        if (t.spatial() && (w > t.minWidth() / config.spatialCompressionRatio() || h > t.minHeight() / config.spatialCompressionRatio())) {
            return tiledDecode(z, t);
        }
        return decodeOwned(z);
    }

    /** post_quant_conv + decoder; owned result. */
    private Tensor decodeOwned(Tensor z) {
        return Scopes.then(Scopes.owned(() -> post_quant_conv.forward(z)), decoder::forward);
    }

    /** diffusers {@code tiled_decode}: overlapping spatial tiles, blended into their upper and left neighbours. */
    private Tensor tiledDecode(Tensor z, Tiling t) {
        int s = config.spatialCompressionRatio();
        long h = z.size(3), w = z.size(4);
        int tileH = t.minHeight() / s, tileW = t.minWidth() / s, strideH = t.strideHeight() / s, strideW = t.strideWidth() / s;
        int blendH = t.minHeight() - t.strideHeight(), blendW = t.minWidth() - t.strideWidth();
        try (PointerScope scope = new PointerScope()) {
            Tensor all = TiledDecode.spatial(z, 3, tileH, tileW, strideH, strideW, blendH, blendW, t.strideHeight(), t.strideWidth(),
                    this::decodeOwned);
            return Tensors.keep(all.narrow(3, 0, Math.min(h * s, all.size(3))).narrow(4, 0, Math.min(w * s, all.size(4))).contiguous());
        }
    }

    /**
     * diffusers {@code _temporal_tiled_decode}: chunks of {@code minFrames/4 + 1} latent frames every
     * {@code strideFrames/4}; after the first chunk, each chunk's first decoded frame is dropped and its first
     * {@code minFrames − strideFrames} frames are blended with the previous chunk's last ones; chunks are cut to
     * {@code strideFrames} frames (the first to {@code strideFrames + 1}) and the video to {@code 1 + 4(F'−1)} frames.
     */
    private Tensor temporalTiledDecode(Tensor z, Tiling t) {
        int r = config.temporalCompressionRatio(), s = config.spatialCompressionRatio();
        long frames = z.size(2);
        long videoFrames = config.videoFrames(frames);
        int tileF = t.minFrames() / r, strideF = t.strideFrames() / r;
        int blendF = t.minFrames() - t.strideFrames();
        List<Tensor> owned = new ArrayList<>();
        try (PointerScope scope = new PointerScope()) {
            List<Tensor> row = new ArrayList<>();
            for (long i = 0; i < frames; i += strideF) {
                Tensor chunk = z.narrow(2, i, Math.min(tileF + 1, frames - i));
                boolean tiled = t.spatial() && (chunk.size(4) > t.minWidth() / s || chunk.size(3) > t.minHeight() / s);
                Tensor decoded = tiled ? tiledDecode(chunk, t) : decodeOwned(chunk);
                owned.add(decoded);
                row.add(i > 0 ? decoded.narrow(2, 1, decoded.size(2) - 1) : decoded);
            }
            List<Tensor> result = new ArrayList<>();
            for (int i = 0; i < row.size(); i++) {
                Tensor tile = row.get(i);
                if (i > 0) TiledDecode.blend(row.get(i - 1), tile, blendF, 2);
                long keep = i > 0 ? t.strideFrames() : t.strideFrames() + 1;
                result.add(tile.narrow(2, 0, Math.min(keep, tile.size(2))));
            }
            Tensor all = cat(new TensorVector(result.toArray(new Tensor[0])), 2);
            return Tensors.keep(all.narrow(2, 0, Math.min(videoFrames, all.size(2))).contiguous());
        } finally {
            Tensors.closeAll(owned);
        }
    }

    /**
     * diffusers' {@code blend_t} (dim 2) / {@code blend_v} (dim 3) / {@code blend_h} (dim 4), in place on {@code b}:
     * {@code b[y] = a[−e + y]·(1 − y/e) + b[y]·(y/e)} for {@code y < e}, with Python-float (double) weights.
     */

    // ---------------------------------------------------------------- encode

    /**
     * {@link #encode(Tensor, Tiling)} with {@link Tiling#DIFFUSERS_DEFAULT} (frame-wise encoding of more than 16 frames
     * on, spatial tiling off): a freshly loaded diffusers model's {@code encode}, what the pipelines use.
     */
    public AutoencoderKL.Encoded encode(Tensor video) {
        return encode(video, Tiling.DIFFUSERS_DEFAULT);
    }

    /**
     * diffusers {@code AutoencoderKLHunyuanVideo.encode(video).latent_dist}: the posterior ({@code DiagonalGaussianDistribution})
     * of a video {@code [B, 3, F, H, W]} in [−1, 1] (any floating dtype, on the CPU or this VAE's device), F = 4k+1, H and W
     * multiples of 8. Its {@code mean}, {@code logvar} (clamped to [−30, 20]) and {@code std = exp(logvar/2)} are
     * {@code [B, 16, k+1, H/8, W/8]} in the VAE dtype, owned by the result. As diffusers' {@code _encode}: with
     * {@link Tiling#framewise()} and more than {@code minFrames} frames, chunks of {@code minFrames + 1} frames every
     * {@code strideFrames} frames are encoded on their own (each chunk's first latent frame dropped after the first chunk,
     * {@code minFrames/4 − strideFrames/4} latent frames blended linearly into the previous chunk's; diffusers 0.32.2 tests
     * its {@code use_framewise_decoding} flag here, which {@code framewise} is); else with {@link Tiling#spatial()} and H
     * or W above {@code minHeight}/{@code minWidth} pixels, overlapping tiles of that many pixels every {@code stride} pixels,
     * blended over {@code (min − stride)/8} latents into their upper and left neighbours; else one pass. The encoder's
     * weights are loaded on the first call (see the class comment); a checkpoint without them fails here with a
     * {@link ModelFormatException} naming the file and the missing tensor. On a {@link #meta} model this is a
     * shapes-only dry run.
     *
     * @throws IllegalArgumentException before any native work for a video that is not {@code [B, 3, 4k+1, 8m, 8n]}
     */
    public AutoencoderKL.Encoded encode(Tensor video, Tiling tiling) {
        checkVideo(video);
        tiling.check(config);
        EncoderPart part = encoderPart(); // outside inference mode: weights are ordinary tensors
        try (InferenceMode guard = new InferenceMode(); PointerScope scope = new PointerScope()) {
            Tensor moments = encodeDispatch(part, place(video), tiling);
            try {
                TensorVector halves = moments.chunk(2, 1);   // get() borrows from the vector
                Tensor mean = halves.get(0).contiguous();
                Tensor logvar = clamp(halves.get(1), LOGVAR_MIN, LOGVAR_MAX);
                Tensor std = exp(logvar.mul(HALF));
                return new AutoencoderKL.Encoded(Tensors.keep(mean), Tensors.keep(logvar), Tensors.keep(std));
            } finally {
                moments.close();
            }
        }
    }

    /**
     * {@code latents · scaling_factor} in the VAE dtype (no shift): encoder latents (a posterior mean or sample) in the
     * transformer's latent space, the inverse of {@link #unscaleLatents}. Owned by the caller.
     */
    public Tensor scaleLatents(Tensor mean) {
        check("latents", mean, config.latentChannels());
        try (InferenceMode guard = new InferenceMode(); PointerScope scope = new PointerScope()) {
            return Tensors.keep(place(mean).mul(scaling));
        }
    }

    /** True once the encoder's weights are loaded (by the first {@link #encode}). */
    public boolean encoderLoaded() {
        return encoderPart != null;
    }

    private void checkVideo(Tensor video) {
        VaeTensors.check("video", video, config.inChannels(), "frames", "height", "width");
        long f = video.size(2), h = video.size(3), w = video.size(4);
        int r = config.temporalCompressionRatio(), s = config.spatialCompressionRatio();
        if ((f - 1) % r != 0) {
            throw new IllegalArgumentException("video has " + f + " frames (shape " + Arrays.toString(Tensors.shape(video)) + "), expected "
                    + r + "k+1 frames (1, " + (1 + r) + ", " + (1 + 2 * r) + ", ...)");
        }
        if (h % s != 0 || w % s != 0) {
            throw new IllegalArgumentException("video is " + h + "x" + w + " pixels (height x width, shape " + Arrays.toString(Tensors.shape(video))
                    + "), expected multiples of " + s);
        }
    }

    /** The encoder half, loaded once on first use (thread-safe). */
    private EncoderPart encoderPart() {
        EncoderPart part = encoderPart;
        if (part != null) return part;
        synchronized (encoderLock) {
            if (closed) throw new IllegalStateException("this AutoencoderKLHunyuanVideo is closed");
            if (encoderPart == null) encoderPart = encoderSource.open(sd -> buildEncoder(sd, config, dtype));
            return encoderPart;
        }
    }

    /** Builds {@code encoder.*} and {@code quant_conv.*}; fails on missing, mis-shaped or unexpected encoder tensors. */
    private static EncoderPart buildEncoder(StateDict sd, HunyuanVideoVaeConfig c, DType compute) {
        if (!sd.isRecording() && !sd.contains("encoder.conv_in.conv.weight")) {
            throw new ModelFormatException(sd.origin() + ": no VAE encoder weights: missing tensor 'encoder.conv_in.conv.weight' (the checkpoint"
                    + " holds " + sd.keys().size() + " tensors, " + sd.keys().stream().filter(k -> k.startsWith("decoder.")).count()
                    + " of the decoder): it decodes but cannot encode; encode needs the full VAE's 'encoder.*' and 'quant_conv.*' tensors");
        }
        return Modules.loadingScoped(built -> {
            EncoderCausal3D encoder = Modules.track(built, EncoderCausal3D.load(sd, c, compute));
            long moments = 2L * c.latentChannels();
            CausalConv3d quant = Modules.track(built, Modules.weightAndBias(sd, "quant_conv", compute,
                    (w, b) -> new CausalConv3d(w, b, 1, 1), moments, moments, 1, 1, 1));
            for (String k : sd.keys()) { // the decoder half was checked at load
                if (!isEncoderKey(k)) sd.markIgnored(k);
            }
            sd.requireAllTaken();
            return new EncoderPart(encoder, quant);
        });
    }

    /** diffusers {@code _encode}: frame-wise first, then spatial tiling, else one pass (encoder + quant_conv). Owned result. */
    private Tensor encodeDispatch(EncoderPart part, Tensor x, Tiling t) {
        long frames = x.size(2), h = x.size(3), w = x.size(4);
        if (t.framewise() && frames > t.minFrames()) return temporalTiledEncode(part, x, t);
        if (t.spatial() && (w > t.minWidth() || h > t.minHeight())) return tiledEncode(part, x, t);
        return encodeOwned(part, x);
    }

    /** encoder + quant_conv over the whole input; owned result. */
    private static Tensor encodeOwned(EncoderPart part, Tensor x) {
        return Scopes.then(part.encoder().forward(x), m -> Scopes.owned(() -> part.quant_conv().forward(m)));
    }

    /**
     * diffusers {@code tiled_encode}: tiles of {@code minHeight × minWidth} pixels every {@code strideHeight/strideWidth}
     * pixels, each encoded on its own, blended over {@code min/8 − stride/8} latents into its upper and left neighbours,
     * cut to {@code stride/8} latents, joined and cut to {@code H/8 × W/8}.
     */
    private Tensor tiledEncode(EncoderPart part, Tensor x, Tiling t) {
        int s = config.spatialCompressionRatio();
        long latentH = x.size(3) / s, latentW = x.size(4) / s;
        int tileH = t.minHeight() / s, tileW = t.minWidth() / s, strideH = t.strideHeight() / s, strideW = t.strideWidth() / s;
        try (PointerScope scope = new PointerScope()) {
            Tensor all = TiledDecode.spatial(x, 3, t.minHeight(), t.minWidth(), t.strideHeight(), t.strideWidth(), tileH - strideH, tileW - strideW,
                    strideH, strideW, tile -> encodeOwned(part, tile));
            return Tensors.keep(all.narrow(3, 0, Math.min(latentH, all.size(3))).narrow(4, 0, Math.min(latentW, all.size(4))).contiguous());
        }
    }

    /**
     * diffusers {@code _temporal_tiled_encode}: chunks of {@code minFrames + 1} frames every {@code strideFrames} frames
     * (spatially tiled when tiling is on and the video is larger than a tile); after the first chunk, each chunk's first
     * latent frame is dropped and its first {@code minFrames/4 − strideFrames/4} latent frames are blended with the previous
     * chunk's last ones; chunks are cut to {@code strideFrames/4} latent frames (the first to one more) and the result to
     * {@code 1 + (F − 1)/4}.
     */
    private Tensor temporalTiledEncode(EncoderPart part, Tensor x, Tiling t) {
        int r = config.temporalCompressionRatio();
        long frames = x.size(2);
        long latentFrames = config.latentFrames(frames);
        int tileF = t.minFrames() / r, strideF = t.strideFrames() / r;
        boolean tiled = t.spatial() && (x.size(3) > t.minHeight() || x.size(4) > t.minWidth());
        List<Tensor> owned = new ArrayList<>();
        try (PointerScope scope = new PointerScope()) {
            List<Tensor> row = new ArrayList<>();
            for (long i = 0; i < frames; i += t.strideFrames()) {
                Tensor chunk = x.narrow(2, i, Math.min(t.minFrames() + 1, frames - i));
                Tensor encoded = tiled ? tiledEncode(part, chunk, t) : encodeOwned(part, chunk);
                owned.add(encoded);
                row.add(i > 0 ? encoded.narrow(2, 1, encoded.size(2) - 1) : encoded);
            }
            List<Tensor> result = new ArrayList<>();
            for (int i = 0; i < row.size(); i++) {
                Tensor tile = row.get(i);
                if (i > 0) TiledDecode.blend(row.get(i - 1), tile, tileF - strideF, 2);
                long keep = i > 0 ? strideF : strideF + 1;
                result.add(tile.narrow(2, 0, Math.min(keep, tile.size(2))));
            }
            Tensor all = cat(new TensorVector(result.toArray(new Tensor[0])), 2);
            return Tensors.keep(all.narrow(2, 0, Math.min(latentFrames, all.size(2))).contiguous());
        } finally {
            Tensors.closeAll(owned);
        }
    }

    // ---------------------------------------------------------------- planning (dry runs)

    /**
     * What a decode of latents {@code latentShape = [B, C, F', h, w]} produces and roughly needs.
     *
     * @param videoShape           {@code [B, out, 1 + 4(F'−1), 8h, 8w]}
     * @param peakActivationBytes  estimated peak of live activations (weights excluded) in the compute dtype: the largest
     *                             stage of one decoder pass over the largest chunk/tile (its input, padded copy and two
     *                             stage-sized temporaries, plus the attention scores of one query frame), plus, when
     *                             tiled, the decoded chunks/tiles kept until blending and the output; an estimate, not a measurement
     * @param passes               decoder passes (chunks × tiles)
     */
    public record DecodePlan(long[] videoShape, long peakActivationBytes, int passes) {}

    /** {@link DecodePlan} of a decode with {@code tiling}; shapes only, no native memory. */
    public static DecodePlan plan(HunyuanVideoVaeConfig c, DType dtype, long[] latentShape, Tiling tiling) {
        if (latentShape.length != 5 || latentShape[1] != c.latentChannels() || Arrays.stream(latentShape).anyMatch(d -> d < 1)) {
            throw new IllegalArgumentException("latent shape " + Arrays.toString(latentShape) + ", expected [batch, " + c.latentChannels()
                    + ", frames, height, width]");
        }
        tiling.check(c);
        long b = latentShape[0], f = latentShape[2], h = latentShape[3], w = latentShape[4];
        int s = c.spatialCompressionRatio(), r = c.temporalCompressionRatio();
        long[] video = {b, c.outChannels(), c.videoFrames(f), h * s, w * s};
        long bytes = dtype.bytes();
        long outputBytes = product(video) * bytes;
        // chunking and tiling: the largest chunk/tile, the number of passes, and the decoded pieces kept for blending
        long chunkF = f, chunks = 1;
        if (tiling.framewise() && f > tiling.minFrames() / r) {
            chunkF = Math.min(f, tiling.minFrames() / r + 1);
            chunks = (f + tiling.strideFrames() / r - 1) / (tiling.strideFrames() / r);
        }
        long tileH = h, tileW = w, tiles = 1;
        if (tiling.spatial() && (w > tiling.minWidth() / s || h > tiling.minHeight() / s)) {
            tileH = Math.min(h, tiling.minHeight() / s);
            tileW = Math.min(w, tiling.minWidth() / s);
            tiles = ((h + tiling.strideHeight() / s - 1) / (tiling.strideHeight() / s)) * ((w + tiling.strideWidth() / s - 1) / (tiling.strideWidth() / s));
        }
        long pass = passBytes(c, b, chunkF, tileH, tileW, bytes);
        long kept = chunks * tiles == 1 ? 0 : chunks * tiles * b * c.outChannels() * c.videoFrames(chunkF) * tileH * s * tileW * s * bytes;
        long peak = chunks * tiles == 1 ? pass : pass + kept + outputBytes;
        return new DecodePlan(video, peak, (int) Math.min(Integer.MAX_VALUE, chunks * tiles));
    }

    /** {@link #plan} for this model's config and dtype. */
    public DecodePlan plan(long[] latentShape, Tiling tiling) {
        return plan(config, dtype, latentShape, tiling);
    }

    /**
     * What an encode of a video {@code videoShape = [B, 3, F, H, W]} produces and roughly needs (the {@link DecodePlan}'s
     * estimate for the encoder).
     *
     * @param latentShape          {@code [B, latent, 1 + (F−1)/4, H/8, W/8]}
     * @param peakActivationBytes  estimated peak of live activations (weights and the input video excluded) in the compute
     *                             dtype: the largest stage of one encoder pass over the largest chunk/tile (its input, padded
     *                             copy and two stage-sized temporaries, plus the attention scores of one query frame), plus,
     *                             when tiled, the encoded chunks/tiles kept until blending, and the posterior; an estimate
     * @param passes               encoder passes (chunks × tiles)
     */
    public record EncodePlan(long[] latentShape, long peakActivationBytes, int passes) {}

    /** {@link EncodePlan} of an encode with {@code tiling}; shapes only, no native memory. */
    public static EncodePlan encodePlan(HunyuanVideoVaeConfig c, DType dtype, long[] videoShape, Tiling tiling) {
        int s = c.spatialCompressionRatio(), r = c.temporalCompressionRatio();
        if (videoShape.length != 5 || videoShape[1] != c.inChannels() || Arrays.stream(videoShape).anyMatch(d -> d < 1)
                || (videoShape[2] - 1) % r != 0 || videoShape[3] % s != 0 || videoShape[4] % s != 0) {
            throw new IllegalArgumentException("video shape " + Arrays.toString(videoShape) + ", expected [batch, " + c.inChannels()
                    + ", " + r + "k+1 frames, height and width multiples of " + s + "]");
        }
        tiling.check(c);
        long b = videoShape[0], f = videoShape[2], h = videoShape[3], w = videoShape[4];
        long[] latent = {b, c.latentChannels(), c.latentFrames(f), h / s, w / s};
        long bytes = dtype.bytes();
        long posteriorBytes = 4 * product(latent) * bytes; // moments (2 halves) + logvar + std
        long chunkF = f, chunks = 1;
        if (tiling.framewise() && f > tiling.minFrames()) {
            chunkF = Math.min(f, tiling.minFrames() + 1L);
            chunks = (f + tiling.strideFrames() - 1) / tiling.strideFrames();
        }
        long tileH = h, tileW = w, tiles = 1;
        if (tiling.spatial() && (w > tiling.minWidth() || h > tiling.minHeight())) {
            tileH = Math.min(h, tiling.minHeight());
            tileW = Math.min(w, tiling.minWidth());
            tiles = ((h + tiling.strideHeight() - 1) / tiling.strideHeight()) * ((w + tiling.strideWidth() - 1) / tiling.strideWidth());
        }
        long pass = encoderPassBytes(c, b, chunkF, tileH, tileW, bytes);
        long pieces = chunks * tiles;
        long kept = pieces == 1 ? 0 : pieces * b * 2L * c.latentChannels() * c.latentFrames(chunkF) * ((tileH + s - 1) / s) * ((tileW + s - 1) / s) * bytes;
        return new EncodePlan(latent, pass + kept + posteriorBytes, (int) Math.min(Integer.MAX_VALUE, pieces));
    }

    /** {@link #encodePlan} for this model's config and dtype. */
    public EncodePlan encodePlan(long[] videoShape, Tiling tiling) {
        return encodePlan(config, dtype, videoShape, tiling);
    }

    /** Peak live activation bytes of one encoder pass over {@code [b, 3, f, h, w]}: the largest stage. */
    private static long encoderPassBytes(HunyuanVideoVaeConfig c, long b, long f, long h, long w, long bytes) {
        long hw = h * w;
        long peak = stage(b * c.inChannels() * f * hw, b * c.channels(0) * f * hw, true);        // conv_in
        long in = c.channels(0);
        for (int i = 0; i < c.numBlocks(); i++) {
            long out = c.channels(i);
            peak = Math.max(peak, stage(b * in * f * hw, b * out * f * hw, true));               // the block's resnets
            boolean space = c.downsamplesSpatially(i), time = c.downsamplesTemporally(i);
            if (space || time) {
                long f2 = time ? (f - 1) / 2 + 1 : f;
                long hw2 = space ? ((h + 1) / 2) * ((w + 1) / 2) : hw;
                peak = Math.max(peak, stage(b * out * f * hw, b * out * f2 * hw2, true));         // the down-sampler
                f = f2;
                if (space) {
                    h = (h + 1) / 2;
                    w = (w + 1) / 2;
                }
                hw = h * w;
            }
            in = out;
        }
        long top = c.topChannels();
        peak = Math.max(peak, stage(b * top * f * hw, b * top * f * hw, true));
        if (c.midBlockAddAttention()) peak = Math.max(peak, 6 * b * top * f * hw + b * hw * f * hw);
        peak = Math.max(peak, stage(b * top * f * hw, b * 2L * c.latentChannels() * f * hw, true) + b * top * f * hw);
        return peak * bytes;
    }

    /** Peak live activation bytes of one decoder pass over {@code [b, latent, f, h, w]}: the largest stage. */
    private static long passBytes(HunyuanVideoVaeConfig c, long b, long f, long h, long w, long bytes) {
        long top = c.topChannels();
        long hw = h * w;
        long peak = stage(b * top * f * hw, b * top * f * hw, f > 0);
        // attention: tokens, normed, q, k, v, output (6 activations) + one query frame's scores over all keys
        if (c.midBlockAddAttention()) peak = Math.max(peak, 6 * b * top * f * hw + b * hw * f * hw);
        int n = c.numBlocks();
        long in = top;
        for (int i = 0; i < n; i++) {
            long out = c.channels(n - 1 - i);
            peak = Math.max(peak, stage(b * in * f * hw, b * out * f * hw, true));
            if (c.upsamplesSpatially(i) || c.upsamplesTemporally(i)) {
                long f2 = c.upsamplesTemporally(i) ? 1 + 2 * (f - 1) : f;
                long hw2 = c.upsamplesSpatially(i) ? 4 * hw : hw;
                peak = Math.max(peak, stage(b * out * f * hw, b * out * f2 * hw2, true) + b * out * f2 * hw2); // + the concatenated pieces
                f = f2;
                hw = hw2;
            }
            in = out;
        }
        peak = Math.max(peak, stage(b * c.channels(0) * f * hw, b * c.outChannels() * f * hw, true) + b * c.channels(0) * f * hw);
        return peak * bytes;
    }

    /** A conv stage: input, its padded copy (≈ input), and two output-sized tensors (normed/activated and the conv result). */
    private static long stage(long inElems, long outElems, boolean padded) {
        return inElems + (padded ? inElems : 0) + 2 * Math.max(inElems, outElems);
    }

    private static long product(long[] shape) {
        long p = 1;
        for (long d : shape) p *= d;
        return p;
    }

    // ---------------------------------------------------------------- inputs

    private Tensor place(Tensor t) {
        return io.mmdit4j.runtime.Transfers.to(t, device, dtype.scalarType());
    }

    private static void check(String what, Tensor t, long channels) {
        VaeTensors.check(what, t, channels, "frames", "height", "width");
    }

    @Override
    public void close() {
        synchronized (encoderLock) {
            closed = true;
            Modules.closeQuietly(encoderPart);
            encoderPart = null;
        }
        Modules.closeAll(Arrays.asList(post_quant_conv, decoder));
        Native.release(scaling);
        Native.release(torchDevice);
    }
}
