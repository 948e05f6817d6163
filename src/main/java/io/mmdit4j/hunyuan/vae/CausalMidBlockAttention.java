package io.mmdit4j.hunyuan.vae;

import io.mmdit4j.io.StateDict;
import io.mmdit4j.nn.Attention;
import io.mmdit4j.nn.Linear;
import io.mmdit4j.nn.Modules;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.vae.Block;
import io.mmdit4j.vae.GroupNorm;
import io.mmdit4j.runtime.Scopes;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;

import java.util.Arrays;

import static org.bytedeco.pytorch.global.torch.cat;

/**
 * The single-head self-attention of {@code HunyuanVideoMidBlock3D} (diffusers {@code Attention} with
 * {@code heads = 1}, {@code dim_head = C}, GroupNorm, residual): tokens are the {@code F·H·W} positions in
 * (frame, row, column) order, and the mask of {@code prepare_causal_attention_mask} lets a token of frame t attend to
 * every token of frames ≤ t (the whole of its own frame, none of a later one).
 *
 * <p>Instead of materialising that {@code [S, S]} additive mask (S = F·H·W; 20 GB at 5 frames of 90×160 latents),
 * each query frame t runs unmasked SDPA over the keys of frames 0..t. Masked-out keys get exactly zero weight in the
 * reference (exp(−∞) = 0), so this is the same function; only the summation order of the softmax denominators
 * and of PV may differ in the last bits.
 */
final class CausalMidBlockAttention implements Block {
    final GroupNorm group_norm;
    final Linear to_q, to_k, to_v;
    final Linear to_out_0; // to_out.0

    private CausalMidBlockAttention(GroupNorm norm, Linear q, Linear k, Linear v, Linear out) {
        this.group_norm = norm;
        this.to_q = q;
        this.to_k = k;
        this.to_v = v;
        this.to_out_0 = out;
    }

    static CausalMidBlockAttention load(StateDict sd, String p, long channels, long groups, DType dtype) {
        GroupNorm norm = null;
        Linear q = null, k = null, v = null, out = null;
        try {
            norm = GroupNorm.load(sd, p + "group_norm", channels, groups, HunyuanVideoVaeConfig.NORM_EPS, dtype);
            q = Linear.load(sd, p + "to_q", channels, channels, dtype);
            k = Linear.load(sd, p + "to_k", channels, channels, dtype);
            v = Linear.load(sd, p + "to_v", channels, channels, dtype);
            out = Linear.load(sd, p + "to_out.0", channels, channels, dtype);
            return new CausalMidBlockAttention(norm, q, k, v, out);
        } catch (RuntimeException e) {
            Modules.closeAll(Arrays.asList(norm, q, k, v, out));
            throw e;
        }
    }

    @Override
    public Tensor forward(Tensor x) { // [B, C, F, H, W] -> [B, C, F, H, W], owned by the caller
        return Scopes.owned(() -> attend(x));
    }

    private Tensor attend(Tensor x) {
        long b = x.size(0), c = x.size(1), frames = x.size(2), height = x.size(3), width = x.size(4);
        long hw = height * width;
        Tensor tokens = x.permute(0, 2, 3, 4, 1).reshape(b, frames * hw, c);          // [B, S, C], S = F·H·W
        Tensor h = group_norm.forward(tokens.transpose(1, 2)).transpose(1, 2);         // [B, S, C]
        Tensor q = to_q.forward(h).view(b, -1, 1, c).transpose(1, 2);                  // [B, 1, S, C]
        Tensor k = to_k.forward(h).view(b, -1, 1, c).transpose(1, 2);
        Tensor v = to_v.forward(h).view(b, -1, 1, c).transpose(1, 2);
        Tensor[] perFrame = new Tensor[(int) frames];
        for (long t = 0; t < frames; t++) { // query frame t sees key frames 0..t
            perFrame[(int) t] = Attention.sdpa(q.narrow(2, t * hw, hw), k.narrow(2, 0, (t + 1) * hw), v.narrow(2, 0, (t + 1) * hw));
        }
        Tensor a = frames == 1 ? perFrame[0] : cat(new TensorVector(perFrame), 2);     // [B, 1, S, C]
        a = a.transpose(1, 2).reshape(b, -1, c).to(q.scalar_type());                   // [B, S, C]
        Tensor out = to_out_0.forward(a).add(tokens);                                  // residual on the un-normed tokens
        return out.view(b, frames, height, width, c).permute(0, 4, 1, 2, 3).contiguous(); // [B, C, F, H, W]
    }

    @Override
    public void close() {
        Modules.closeAll(Arrays.asList(group_norm, to_q, to_k, to_v, to_out_0));
    }
}
