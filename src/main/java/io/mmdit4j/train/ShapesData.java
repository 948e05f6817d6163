package io.mmdit4j.train;

import io.mmdit4j.flux.FluxTextEncoders;
import io.mmdit4j.runtime.Native;
import io.mmdit4j.runtime.Tensors;
import io.mmdit4j.shapes.Scene;
import io.mmdit4j.shapes.ShapesWorld;
import io.mmdit4j.vae.AutoencoderKL;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.InferenceMode;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.awt.image.BufferedImage;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.IntConsumer;

/**
 * Scenes {@code 0..n-1} of a {@link ShapesWorld}, rendered, encoded once by a FLUX pipeline's VAE (the posterior mean,
 * normalised as {@code (z − shift)·scale}) and captioned through its T5 and CLIP (max sequence length as given), held in
 * memory as fp32 tensors made outside inference mode (autograd may save them).
 */
public final class ShapesData implements TrainingData {
    private final ShapesWorld world;
    private final int maxSequenceLength;
    private final List<Tensor> latents = new ArrayList<>(), prompts = new ArrayList<>(), pooled = new ArrayList<>();
    private final Tensor emptyPrompt, emptyPooled;

    public ShapesData(ShapesWorld world, int n, AutoencoderKL vae, FluxTextEncoders text, int maxSequenceLength, IntConsumer progress) {
        if (n < 1) throw new IllegalArgumentException("the dataset needs at least one picture, got " + n);
        world.checkPlaceable();
        this.world = world;
        this.maxSequenceLength = maxSequenceLength;
        int chunk = 16;
        try {
            for (int start = 0; start < n; start += chunk) {
                int end = Math.min(n, start + chunk);
                List<Scene> scenes = new ArrayList<>();
                for (int i = start; i < end; i++) scenes.add(world.scene(i));
                try (PointerScope scope = new PointerScope()) {
                    Tensor x0, t5, pool;
                    try (InferenceMode guard = new InferenceMode()) {
                        Tensor images = images(scenes);
                        try (AutoencoderKL.Encoded e = vae.encode(images)) {
                            x0 = io.mmdit4j.runtime.Scopes.adopt(vae.scaleLatents(e.mean()));
                        }
                        FluxTextEncoders.Embeddings emb = text.encode(scenes.stream().map(Scene::caption).toList(), 1, maxSequenceLength);
                        t5 = io.mmdit4j.runtime.Scopes.adopt(emb.promptEmbeds());
                        pool = io.mmdit4j.runtime.Scopes.adopt(emb.pooled());
                        io.mmdit4j.runtime.Scopes.adopt(emb.textIds());
                    }
                    for (int j = 0; j < scenes.size(); j++) { // clones outside inference mode: ordinary tensors
                        latents.add(Native.keep(x0.select(0, j).to(ScalarType.Float).clone()));
                        prompts.add(Native.keep(t5.select(0, j).to(ScalarType.Float).clone()));
                        pooled.add(Native.keep(pool.select(0, j).to(ScalarType.Float).clone()));
                    }
                }
                if (progress != null) progress.accept(end);
            }
            try (PointerScope scope = new PointerScope()) {
                Tensor t5, pool;
                try (InferenceMode guard = new InferenceMode()) {
                    FluxTextEncoders.Embeddings emb = text.encode(List.of(""), 1, maxSequenceLength);
                    t5 = io.mmdit4j.runtime.Scopes.adopt(emb.promptEmbeds());
                    pool = io.mmdit4j.runtime.Scopes.adopt(emb.pooled());
                    io.mmdit4j.runtime.Scopes.adopt(emb.textIds());
                }
                emptyPrompt = Native.keep(t5.select(0, 0).to(ScalarType.Float).clone());
                emptyPooled = Native.keep(pool.select(0, 0).to(ScalarType.Float).clone());
            }
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    /** Pictures [B, 3, H, W] in [-1, 1] (fp32) of the scenes. */
    public static Tensor images(List<Scene> scenes) {
        int w = scenes.get(0).width(), h = scenes.get(0).height();
        float[] px = new float[scenes.size() * 3 * w * h];
        for (int k = 0; k < scenes.size(); k++) {
            BufferedImage img = ShapesWorld.render(scenes.get(k));
            int[] rgb = img.getRGB(0, 0, w, h, null, 0, w);
            int base = k * 3 * w * h;
            for (int i = 0; i < w * h; i++) {
                px[base + i] = ((rgb[i] >> 16) & 0xff) / 127.5f - 1f;
                px[base + w * h + i] = ((rgb[i] >> 8) & 0xff) / 127.5f - 1f;
                px[base + 2 * w * h + i] = (rgb[i] & 0xff) / 127.5f - 1f;
            }
        }
        return Tensors.fromFloats(px, scenes.size(), 3, h, w);
    }

    @Override public int size() { return latents.size(); }
    @Override public Tensor latents(int i) { return latents.get(i); }
    @Override public Tensor promptEmbeds(int i) { return prompts.get(i); }
    @Override public Tensor pooled(int i) { return pooled.get(i); }
    @Override public Tensor emptyPromptEmbeds() { return emptyPrompt; }
    @Override public Tensor emptyPooled() { return emptyPooled; }

    @Override
    public String describe() {
        return String.format(Locale.ROOT, "shapes world seed %d, %d pictures of %dx%d, %d-%d objects placed %s, T5 length %d", world.seed(),
                latents.size(), world.size(), world.size(), world.minObjects(), world.maxObjects(),
                world.layout().placement(), maxSequenceLength);
    }

    @Override
    public void close() {
        for (List<Tensor> l : List.of(latents, prompts, pooled)) {
            l.forEach(Native::release);
            l.clear();
        }
        Native.release(emptyPrompt);
        Native.release(emptyPooled);
    }
}
