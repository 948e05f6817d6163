package io.mmdit4j.vae.wan;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.Scopes;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.vae.Conv2d;
import org.bytedeco.pytorch.DoubleOptional;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarOptional;
import org.bytedeco.pytorch.ScalarTypeOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.util.ArrayList;
import java.util.List;

import static org.bytedeco.pytorch.global.torch.cat;
import static org.bytedeco.pytorch.global.torch.constant_pad_nd;
import static org.bytedeco.pytorch.global.torch.empty;
import static org.bytedeco.pytorch.global.torch.linalg_vector_norm;
import static org.bytedeco.pytorch.global.torch.silu;
import static org.bytedeco.pytorch.global.torch.stack;
import static org.bytedeco.pytorch.global.torch.upsample_nearest2d;
import static org.bytedeco.pytorch.global.torch.zeros_like;

/** The building blocks of the Wan 2.1 encoder and decoder (diffusers {@code autoencoder_kl_wan}), with their feature-cache protocol. */
final class WanBlocks {
    private WanBlocks() {}

    /** A block that reads and writes the feature cache (the encoder's down blocks: residual blocks and downsamplers). */
    interface Cached extends AutoCloseable {
        /** Owned result; x is not consumed. */
        Tensor forward(Tensor x, FeatureCache cache);

        @Override
        void close();
    }

    /** How many trailing frames a cached convolution keeps ({@code CACHE_T}). */
    static final int CACHE_T = 2;

    /**
     * A cached causal convolution as diffusers calls it ({@code cache_x = x[:, :, -2:]}, prefixed with the previous cache's
     * last frame when x has one frame; conv with the previous cache; store cache_x). {@code cache} null: no cache.
     */
    static Tensor cachedConv(WanCausalConv3d conv, Tensor x, FeatureCache cache) {
        if (cache == null) return conv.forward(x, null);
        int slot = cache.next();
        Tensor prev = cache.get(slot);
        Tensor next = cache.keep ? lastFrames(x, prev) : null;
        Tensor y = conv.forward(x, prev);
        if (cache.keep) cache.put(slot, next);
        return y;
    }

    /** The owned context to cache: x's last two frames, after the previous context's last frame when x has one. */
    private static Tensor lastFrames(Tensor x, Tensor prev) {
        return Scopes.owned(() -> {
            long t = x.size(2);
            Tensor last = x.narrow(2, Math.max(0, t - CACHE_T), Math.min(t, CACHE_T));
            if (last.size(2) < CACHE_T && prev != null) last = cat(new TensorVector(prev.narrow(2, prev.size(2) - 1, 1), last), 2);
            return last.clone();
        });
    }

    /** {@code WanRMS_norm}: {@code F.normalize(x, dim=1)·√C·γ} (γ {@code [C, 1, 1(, 1)]}, no bias). */
    static final class RmsNorm implements AutoCloseable {
        final Tensor gamma;
        private final Scalar scale;
        private static final ScalarOptional EPS = Native.keep(new ScalarOptional(new Scalar(1e-12)));
        private static final Scalar TWO = Native.keep(new Scalar(2.0));

        RmsNorm(StateDict sd, String p, long dim, boolean images, DType dtype) {
            gamma = images ? sd.take(p + ".gamma", dtype, dim, 1, 1) : sd.take(p + ".gamma", dtype, dim, 1, 1, 1);
            scale = Native.keep(new Scalar(Math.sqrt(dim)));
        }

        Tensor forward(Tensor x) {
            if (x.is_meta()) return x.clone();
            return Scopes.local(() -> {
                Tensor norm = linalg_vector_norm(x, TWO, new long[] {1}, true, new ScalarTypeOptional()).clamp_min(EPS.get());
                return x.div(norm).mul(scale).mul(gamma);
            });
        }

        @Override
        public void close() {
            Native.release(gamma);
            Native.release(scale);
        }
    }

    /** {@code WanResidualBlock}: shortcut + conv2(silu(norm2(conv1(silu(norm1(x)))))), both convs cached. */
    static final class ResidualBlock implements Cached {
        final RmsNorm norm1, norm2;
        final WanCausalConv3d conv1, conv2, conv_shortcut; // shortcut: null when in == out

        ResidualBlock(StateDict sd, String p, long in, long out, DType dtype) {
            List<AutoCloseable> built = new ArrayList<>();
            try {
                norm1 = Modules.track(built, new RmsNorm(sd, p + ".norm1", in, false, dtype));
                conv1 = Modules.track(built, WanCausalConv3d.load(sd, p + ".conv1", in, out, 3, 3, dtype));
                norm2 = Modules.track(built, new RmsNorm(sd, p + ".norm2", out, false, dtype));
                conv2 = Modules.track(built, WanCausalConv3d.load(sd, p + ".conv2", out, out, 3, 3, dtype));
                conv_shortcut = in != out ? Modules.track(built, WanCausalConv3d.load(sd, p + ".conv_shortcut", in, out, 1, 1, dtype)) : null;
            } catch (RuntimeException e) {
                Modules.closeAll(built);
                throw e;
            }
        }

        /** Owned result; x is not consumed. */
        @Override
        public Tensor forward(Tensor x, FeatureCache cache) {
            Tensor h = Scopes.owned(() -> cachedConv(conv1, silu(norm1.forward(x)), cache));
            Tensor y = Scopes.then(h, t -> Scopes.owned(() -> cachedConv(conv2, silu(norm2.forward(t)), cache)));
            return Scopes.then(y, t -> Scopes.owned(() -> conv_shortcut == null ? t.add(x) : t.add(conv_shortcut.forward(x, null))));
        }

        @Override
        public void close() {
            Modules.closeAll(norm1, conv1, norm2, conv2, conv_shortcut);
        }
    }

    /** {@code WanAttentionBlock}: single-head self-attention over the pixels of each frame, with a residual. */
    static final class AttentionBlock implements AutoCloseable {
        final RmsNorm norm;
        final Conv2d to_qkv, proj;

        AttentionBlock(StateDict sd, String p, long dim, DType dtype) {
            List<AutoCloseable> built = new ArrayList<>();
            try {
                norm = Modules.track(built, new RmsNorm(sd, p + ".norm", dim, true, dtype));
                to_qkv = Modules.track(built, Conv2d.load(sd, p + ".to_qkv", dim, 3 * dim, 1, 1, 0, dtype));
                proj = Modules.track(built, Conv2d.load(sd, p + ".proj", dim, dim, 1, 1, 0, dtype));
            } catch (RuntimeException e) {
                Modules.closeAll(built);
                throw e;
            }
        }

        Tensor forward(Tensor x) {
            if (x.is_meta()) return x.clone();
            return Scopes.owned(() -> {
                long b = x.size(0), c = x.size(1), t = x.size(2), h = x.size(3), w = x.size(4);
                Tensor frames = x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w);
                Tensor qkv = to_qkv.forward(norm.forward(frames)).reshape(b * t, 1, 3 * c, h * w).permute(0, 1, 3, 2).contiguous();
                TensorVector parts = qkv.chunk(3, -1);
                Tensor a = io.mmdit4j.nn.Attention.sdpa(parts.get(0), parts.get(1), parts.get(2));   // [BT,1,HW,C]
                Tensor o = proj.forward(a.squeeze(1).permute(0, 2, 1).reshape(b * t, c, h, w));
                return o.view(b, t, c, h, w).permute(0, 2, 1, 3, 4).add(x);
            });
        }

        @Override
        public void close() {
            Modules.closeAll(norm, to_qkv, proj);
        }
    }

    /**
     * {@code WanResample} in the decoder's modes: {@code upsample2d} (nearest ×2 per frame, Conv2d to dim/2) and
     * {@code upsample3d} (first a causal time conv to 2·dim whose halves become two frames each, from the second latent
     * frame on; the first frame only sets the "Rep" mark), keys {@code resample.1} and {@code time_conv}.
     */
    static final class Upsample implements AutoCloseable {
        final Conv2d resample_1;
        final WanCausalConv3d time_conv; // null for upsample2d

        Upsample(StateDict sd, String p, long dim, long outDim, boolean temporal, DType dtype) {
            List<AutoCloseable> built = new ArrayList<>();
            try {
                resample_1 = Modules.track(built, Conv2d.load(sd, p + ".resample.1", dim, outDim, 3, 1, 1, dtype));
                time_conv = temporal ? Modules.track(built, WanCausalConv3d.loadTime(sd, p + ".time_conv", dim, 2 * dim, dtype)) : null;
            } catch (RuntimeException e) {
                Modules.closeAll(built);
                throw e;
            }
        }

        Tensor forward(Tensor x, FeatureCache cache) {
            Tensor in = x;
            boolean ownsIn = false;
            if (time_conv != null && cache != null) {
                int slot = cache.next();
                if (!cache.seen(slot)) {
                    cache.markRep(slot); // the first latent frame is not doubled
                } else {
                    boolean rep = cache.isRep(slot);
                    Tensor prev = cache.get(slot);
                    Tensor next = cache.keep ? Scopes.owned(() -> {
                        long t = x.size(2);
                        Tensor last = x.narrow(2, Math.max(0, t - CACHE_T), Math.min(t, CACHE_T));
                        if (last.size(2) < CACHE_T) {
                            last = rep ? cat(new TensorVector(zeros_like(last), last), 2) : cat(new TensorVector(prev.narrow(2, prev.size(2) - 1, 1), last), 2);
                        }
                        return last.clone();
                    }) : null;
                    in = Scopes.owned(() -> {
                        Tensor y = time_conv.forward(x, rep ? null : prev);                  // [B, 2C, T, H, W]
                        long b = x.size(0), c = x.size(1), t = y.size(2), h = x.size(3), w = x.size(4);
                        Tensor r = y.reshape(b, 2, c, t, h, w);
                        return stack(new TensorVector(r.select(1, 0), r.select(1, 1)), 3).reshape(b, c, t * 2, h, w);
                    });
                    ownsIn = true;
                    if (cache.keep) cache.put(slot, next);
                }
            }
            Tensor src = in;
            try {
                return Scopes.owned(() -> {
                    long b = src.size(0), c = src.size(1), t = src.size(2), h = src.size(3), w = src.size(4);
                    Tensor frames = src.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w);
                    Tensor up;
                    if (frames.is_meta()) {
                        return empty(new long[] {b, resample_1.outChannels(), t, 2 * h, 2 * w}, src.options(), new MemoryFormatOptional());
                    }
                    up = upsample_nearest2d(frames.to(ScalarType.Float), new long[] {2 * h, 2 * w}, new DoubleOptional(), new DoubleOptional())
                            .to(frames.scalar_type());
                    Tensor y = resample_1.forward(up);
                    return y.view(b, t, y.size(1), y.size(2), y.size(3)).permute(0, 2, 1, 3, 4);
                });
            } finally {
                if (ownsIn) in.close();
            }
        }

        @Override
        public void close() {
            Modules.closeAll(resample_1, time_conv);
        }
    }

    /**
     * {@code WanResample} in the encoder's modes: {@code downsample2d} (per frame, zero padding right and bottom by one,
     * then a 3x3 stride-2 Conv2d keeping the channels) and {@code downsample3d} (the same, then from the second chunk on a
     * time conv of stride 2 over the previous chunk's last frame and this chunk's frames: 4 frames → 2, 2 → 1; the first
     * chunk is only cached), keys {@code resample.1} and {@code time_conv}.
     */
    static final class Downsample implements Cached {
        private static final Scalar ZERO = Native.keep(new Scalar(0.0));
        private static final long[] PAD_RIGHT_BOTTOM = {0, 1, 0, 1};

        final Conv2d resample_1;
        final WanCausalConv3d time_conv; // null for downsample2d

        Downsample(StateDict sd, String p, long dim, boolean temporal, DType dtype) {
            List<AutoCloseable> built = new ArrayList<>();
            try {
                resample_1 = Modules.track(built, Conv2d.load(sd, p + ".resample.1", dim, dim, 3, 2, 0, dtype));
                time_conv = temporal ? Modules.track(built, WanCausalConv3d.loadDownTime(sd, p + ".time_conv", dim, dtype)) : null;
            } catch (RuntimeException e) {
                Modules.closeAll(built);
                throw e;
            }
        }

        @Override
        public Tensor forward(Tensor x, FeatureCache cache) {
            Tensor y = Scopes.owned(() -> {
                long b = x.size(0), c = x.size(1), t = x.size(2), h = x.size(3), w = x.size(4);
                Tensor frames = x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w);
                Tensor padded = frames.is_meta()
                        ? empty(new long[] {b * t, c, h + 1, w + 1}, frames.options(), new MemoryFormatOptional())
                        : constant_pad_nd(frames, PAD_RIGHT_BOTTOM, ZERO);
                Tensor o = resample_1.forward(padded);
                return o.view(b, t, o.size(1), o.size(2), o.size(3)).permute(0, 2, 1, 3, 4);
            });
            if (time_conv == null || cache == null) return y;
            int slot = cache.next();
            Tensor prev = cache.get(slot);
            if (prev == null) { // the first chunk passes unchanged and is cached
                if (cache.keep) cache.put(slot, lastFrame(y));
                return y;
            }
            try {
                Tensor out = Scopes.owned(() -> time_conv.forward(cat(new TensorVector(prev.narrow(2, prev.size(2) - 1, 1), y), 2), null));
                if (cache.keep) cache.put(slot, lastFrame(y)); // after the read: put frees prev
                return out;
            } finally {
                y.close();
            }
        }

        /** Only a chunk's last frame is read again (diffusers caches the whole first chunk, which is one frame). */
        private static Tensor lastFrame(Tensor y) {
            return Scopes.owned(() -> y.narrow(2, y.size(2) - 1, 1).clone());
        }

        @Override
        public void close() {
            Modules.closeAll(resample_1, time_conv);
        }
    }

    /** Keeps a module list closable as one. */
    static <T extends AutoCloseable> List<T> track(List<AutoCloseable> built, List<T> modules) {
        built.addAll(modules);
        return modules;
    }

    static Tensor metaSafeSilu(Tensor x) {
        return silu(x);
    }

    static Tensor keep(Tensor t) {
        return Tensors.keep(t);
    }
}
