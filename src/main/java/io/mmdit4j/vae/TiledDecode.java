package io.mmdit4j.vae;

import io.mmdit4j.runtime.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;

import java.util.ArrayList;
import java.util.List;
import java.util.function.UnaryOperator;

import static org.bytedeco.pytorch.global.torch.cat;

/**
 * diffusers' spatially tiled VAE decode, shared by the 2-D ({@link AutoencoderKL}) and 3-D (HunyuanVideo) VAEs: latent
 * tiles decoded one by one, each blended with its upper and left neighbours over the overlap, cut to the stride and
 * joined. Tiles see only their own pixels (GroupNorm statistics, attention, padding), so the result is close to, not
 * equal to, an untiled decode.
 */
public final class TiledDecode {
    private TiledDecode() {}

    /**
     * Decodes {@code z} tile by tile over its axes {@code hDim} and {@code hDim + 1}.
     *
     * @param tileH,tileW       tile size in latents; {@code strideH,strideW}: step between tiles in latents
     * @param blendH,blendW     blended rows/columns in pixels; {@code keepH,keepW}: pixels kept of each tile
     * @param decodeOwned       decodes one latent tile, returning an owned tensor
     * @return the joined image in the caller's scope (not cropped to the input size)
     */
    public static Tensor spatial(Tensor z, int hDim, long tileH, long tileW, long strideH, long strideW, int blendH, int blendW,
                                 long keepH, long keepW, UnaryOperator<Tensor> decodeOwned) {
        int wDim = hDim + 1;
        long h = z.size(hDim), w = z.size(wDim);
        List<Tensor> owned = new ArrayList<>();
        try {
            List<List<Tensor>> rows = new ArrayList<>();
            for (long i = 0; i < h; i += strideH) {
                List<Tensor> row = new ArrayList<>();
                for (long j = 0; j < w; j += strideW) {
                    Tensor tile = z.narrow(hDim, i, Math.min(tileH, h - i)).narrow(wDim, j, Math.min(tileW, w - j));
                    Tensor decoded = decodeOwned.apply(tile);
                    owned.add(decoded);
                    row.add(decoded);
                }
                rows.add(row);
            }
            List<Tensor> resultRows = new ArrayList<>();
            for (int i = 0; i < rows.size(); i++) {
                List<Tensor> row = rows.get(i);
                List<Tensor> resultRow = new ArrayList<>();
                for (int j = 0; j < row.size(); j++) {
                    Tensor tile = row.get(j);
                    if (i > 0) blend(rows.get(i - 1).get(j), tile, blendH, hDim);
                    if (j > 0) blend(row.get(j - 1), tile, blendW, wDim);
                    resultRow.add(tile.narrow(hDim, 0, Math.min(keepH, tile.size(hDim))).narrow(wDim, 0, Math.min(keepW, tile.size(wDim))));
                }
                resultRows.add(cat(new TensorVector(resultRow.toArray(new Tensor[0])), wDim));
            }
            return cat(new TensorVector(resultRows.toArray(new Tensor[0])), hDim);
        } finally {
            Tensors.closeAll(owned);
        }
    }

    /**
     * diffusers' {@code blend_v} / {@code blend_h} / {@code blend_t} along {@code dim}, in place on {@code b}:
     * {@code b[y] = a[-e + y]·(1 - y/e) + b[y]·(y/e)} for {@code y < e}, with Python-float weights.
     */
    public static void blend(Tensor a, Tensor b, int extent, int dim) {
        int e = (int) Math.min(Math.min(a.size(dim), b.size(dim)), extent);
        for (int y = 0; y < e; y++) {
            try (PointerScope scope = new PointerScope()) {
                Tensor by = b.select(dim, y);
                Tensor mixed = a.select(dim, a.size(dim) - e + y).mul(new Scalar(1 - (double) y / e)).add(by.mul(new Scalar((double) y / e)));
                by.copy_(mixed);
            }
        }
    }
}
