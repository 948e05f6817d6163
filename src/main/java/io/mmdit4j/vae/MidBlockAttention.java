package io.mmdit4j.vae;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.nn.Attention;
import io.mmdit4j.nn.Linear;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.Scopes;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;

import java.util.Arrays;

import static io.mmdit4j.nn.Modules.track;
import static org.bytedeco.pytorch.global.torch.cat;

/**
 * The single-head self-attention of the VAE mid blocks (diffusers {@code Attention} with {@code heads = 1},
 * {@code dim_head = C}, GroupNorm, residual; {@code AttnProcessor2_0}): GroupNorm over the channels of the tokens, q/k/v
 * Linear(C→C), SDPA with scale 1/√C, {@code to_out.0}, plus the residual (rescale factor 1). AutoencoderKL's tokens are
 * the H·W positions of {@code [B, C, H, W]}. HunyuanVideo's ({@code HunyuanVideoMidBlock3D}) are the {@code F·H·W}
 * positions of {@code [B, C, F, H, W]} in (frame, row, column) order, under the mask of
 * {@code prepare_causal_attention_mask}: a token of frame t attends to every token of frames ≤ t (the whole of its own
 * frame, none of a later one).
 *
 * <p>Instead of materialising that {@code [S, S]} additive mask (S = F·H·W; 20 GB at 5 frames of 90×160 latents),
 * each query frame t runs unmasked SDPA over the keys of frames 0..t. Masked-out keys get exactly zero weight in the
 * reference (exp(−∞) = 0), so this is the same function; only the summation order of the softmax denominators
 * and of PV may differ in the last bits.
 */
public final class MidBlockAttention implements Block {
    final GroupNorm group_norm;
    final Linear to_q, to_k, to_v;
    final Linear to_out_0;        // to_out.0
    private final boolean causal; // HunyuanVideo's frame-causal attention over [B, C, F, H, W]

    private MidBlockAttention(GroupNorm groupNorm, Linear q, Linear k, Linear v, Linear out, boolean causal) {
        this.group_norm = groupNorm;
        this.to_q = q;
        this.to_k = k;
        this.to_v = v;
        this.to_out_0 = out;
        this.causal = causal;
    }

    /** AutoencoderKL's attention over {@code [B, C, H, W]} (a {@link Block.AttentionLoader}). */
    public static MidBlockAttention load(StateDict sd, String p, long channels, long groups, double eps, DType dtype) {
        return load(sd, p, channels, groups, eps, false, dtype);
    }

    /** HunyuanVideo's frame-causal attention over {@code [B, C, F, H, W]} (a {@link Block.AttentionLoader}). */
    public static MidBlockAttention loadCausal(StateDict sd, String p, long channels, long groups, double eps, DType dtype) {
        return load(sd, p, channels, groups, eps, true, dtype);
    }

    private static MidBlockAttention load(StateDict sd, String p, long channels, long groups, double eps, boolean causal, DType dtype) {
        return Modules.loading(built -> new MidBlockAttention(track(built, GroupNorm.load(sd, p + "group_norm", channels, groups, eps, dtype)),
                track(built, Linear.load(sd, p + "to_q", channels, channels, dtype)), track(built, Linear.load(sd, p + "to_k", channels, channels, dtype)),
                track(built, Linear.load(sd, p + "to_v", channels, channels, dtype)),
                track(built, Linear.load(sd, p + "to_out.0", channels, channels, dtype)), causal));
    }

    @Override
    public Tensor forward(Tensor x) { // [B, C, (F,) H, W] -> the same shape, owned by the caller
        return Scopes.owned(() -> causal ? attendCausal(x) : attend(x));
    }

    private Tensor attend(Tensor x) {
        long b = x.size(0), c = x.size(1), height = x.size(2), width = x.size(3);
        Tensor tokens = x.view(b, c, height * width).transpose(1, 2);              // [B, HW, C]
        Tensor[] qkv = qkv(tokens);                                                 // [B, 1, HW, C] each
        Tensor out = project(Attention.sdpa(qkv[0], qkv[1], qkv[2]), qkv[0]);      // [B, HW, C]
        return out.transpose(-1, -2).reshape(b, c, height, width).add(x);
    }

    private Tensor attendCausal(Tensor x) {
        long b = x.size(0), c = x.size(1), frames = x.size(2), height = x.size(3), width = x.size(4);
        long hw = height * width;
        Tensor tokens = x.permute(0, 2, 3, 4, 1).reshape(b, frames * hw, c);          // [B, S, C], S = F·H·W
        Tensor[] qkv = qkv(tokens);                                                    // [B, 1, S, C] each
        Tensor q = qkv[0], k = qkv[1], v = qkv[2];
        Tensor[] perFrame = new Tensor[(int) frames];
        for (long t = 0; t < frames; t++) { // query frame t sees key frames 0..t
            perFrame[(int) t] = Attention.sdpa(q.narrow(2, t * hw, hw), k.narrow(2, 0, (t + 1) * hw), v.narrow(2, 0, (t + 1) * hw));
        }
        Tensor a = frames == 1 ? perFrame[0] : cat(new TensorVector(perFrame), 2);     // [B, 1, S, C]
        Tensor out = project(a, q).add(tokens);                                        // residual on the un-normed tokens
        return out.view(b, frames, height, width, c).permute(0, 4, 1, 2, 3).contiguous(); // [B, C, F, H, W]
    }

    /** q, k and v {@code [B, 1, S, C]} of the GroupNormed tokens {@code [B, S, C]}. */
    private Tensor[] qkv(Tensor tokens) {
        long b = tokens.size(0), c = tokens.size(2);
        Tensor h = group_norm.forward(tokens.transpose(1, 2)).transpose(1, 2);        // [B, S, C]
        return new Tensor[] {to_q.forward(h).view(b, -1, 1, c).transpose(1, 2), to_k.forward(h).view(b, -1, 1, c).transpose(1, 2),
                to_v.forward(h).view(b, -1, 1, c).transpose(1, 2)};
    }

    /** {@code to_out.0} of the attention {@code [B, 1, S, C]}, in q's dtype: {@code [B, S, C]}. */
    private Tensor project(Tensor attention, Tensor q) {
        long b = attention.size(0), c = attention.size(3);
        return to_out_0.forward(attention.transpose(1, 2).reshape(b, -1, c).to(q.scalar_type()));
    }

    @Override
    public void close() {
        Modules.closeAll(Arrays.asList(group_norm, to_q, to_k, to_v, to_out_0));
    }
}
