package io.mmdit4j.vae.wan;

import io.mmdit4j.runtime.Native;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.List;

/**
 * The causal feature cache of the decoder and the encoder ({@code feat_cache}/{@code feat_idx} and {@code enc_feat_map} of
 * diffusers' {@code AutoencoderKLWan}): one slot per cached causal convolution in call order, holding the last (up to two)
 * frames of that convolution's input from the previous latent frame (or encoder chunk), the temporal upsampler's "Rep"
 * mark after the first frame, or the temporal downsampler's last output frame. Slots own their tensors. When {@link #keep}
 * is false (the last latent frame or chunk), nothing new is stored: no later one will read it.
 */
final class FeatureCache implements AutoCloseable {
    private final List<Tensor> frames = new ArrayList<>();
    private final List<Boolean> rep = new ArrayList<>();
    private int index;
    boolean keep = true;

    /** Starts the next latent frame: slots are read again from the first. */
    void rewind() {
        index = 0;
    }

    /** The slot of the next cached convolution. */
    int next() {
        if (index == frames.size()) {
            frames.add(null);
            rep.add(false);
        }
        return index++;
    }

    Tensor get(int slot) {
        return frames.get(slot);
    }

    boolean isRep(int slot) {
        return rep.get(slot);
    }

    /** Whether the slot has been visited before (a value or the "Rep" mark). */
    boolean seen(int slot) {
        return frames.get(slot) != null || rep.get(slot);
    }

    void markRep(int slot) {
        rep.set(slot, true);
    }

    /** Replaces the slot's frames with {@code owned} (null clears it) and clears a "Rep" mark. */
    void put(int slot, Tensor owned) {
        Native.release(frames.get(slot));
        frames.set(slot, owned);
        rep.set(slot, false);
    }

    @Override
    public void close() {
        frames.forEach(Native::release);
        frames.clear();
        rep.clear();
    }
}
