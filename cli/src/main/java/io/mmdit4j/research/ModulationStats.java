package io.mmdit4j.research;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.mmdit4j.guidance.BlockConditioning;
import io.mmdit4j.guidance.ConditioningObserver;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Modulation statistics of every forward of a batch, per row (image), denoising step and block: {@code ||temb||}, the norm
 * of the vector the block receives ({@code ||temb_guided||}, after any norm control), the norm of the guidance offset
 * {@code ||Σ w·f(l)·delta||} (0 for unguided blocks), the angle between {@code temb} and that offset in degrees (empty when
 * the offset is 0; equal to the angle between temb and delta when the weight is positive, its supplement when negative),
 * and the L2 norms of the block's adaLN modulation vectors (double blocks: image and text streams, six chunks each; single
 * blocks: shift, scale, gate). Norms are computed in double precision from the fp32 values over the feature dimension.
 */
public final class ModulationStats implements ConditioningObserver {
    /** The modulation columns, in CSV order. */
    public static final List<String> MODULATION_COLUMNS;
    static {
        List<String> c = new ArrayList<>();
        for (String stream : new String[] {"img", "txt"}) {
            for (String n : new String[] {"shift_msa", "scale_msa", "gate_msa", "shift_mlp", "scale_mlp", "gate_mlp"}) c.add(stream + "_" + n);
        }
        for (String n : new String[] {"shift", "scale", "gate"}) c.add("single_" + n);
        MODULATION_COLUMNS = List.copyOf(c);
    }
    public static final List<String> COLUMNS;
    static {
        List<String> c = new ArrayList<>(List.of("cell", "step", "block", "kind", "temb_norm", "guided_norm", "offset_norm", "angle_deg"));
        c.addAll(MODULATION_COLUMNS);
        COLUMNS = List.copyOf(c);
    }

    /** One row of statistics; {@code modulation} maps column names of {@link #MODULATION_COLUMNS} to norms (only those the block has). */
    public record Row(String cell, int step, int block, String kind, double tembNorm, double guidedNorm, double offsetNorm, double angleDeg,
                      Map<String, Double> modulation) {
        public List<Object> csvFields() {
            List<Object> f = new ArrayList<>(List.of(cell, step, block, kind, num(tembNorm), num(guidedNorm), num(offsetNorm), num(angleDeg)));
            for (String c : MODULATION_COLUMNS) f.add(modulation.containsKey(c) ? num(modulation.get(c)) : "");
            return f;
        }

        public ObjectNode json(ObjectMapper m) {
            ObjectNode o = m.createObjectNode().put("cell", cell).put("step", step).put("block", block).put("kind", kind)
                    .put("temb_norm", tembNorm).put("guided_norm", guidedNorm).put("offset_norm", offsetNorm);
            if (Double.isNaN(angleDeg)) o.putNull("angle_deg");
            else o.put("angle_deg", angleDeg);
            modulation.forEach(o::put);
            return o;
        }

        /** A row read back from stats.csv. */
        public static Row fromCsv(List<String> header, List<String> f) {
            Map<String, String> v = new LinkedHashMap<>();
            for (int i = 0; i < header.size() && i < f.size(); i++) v.put(header.get(i), f.get(i));
            Map<String, Double> mod = new LinkedHashMap<>();
            for (String c : MODULATION_COLUMNS) {
                String s = v.getOrDefault(c, "");
                if (!s.isEmpty()) mod.put(c, Double.parseDouble(s));
            }
            return new Row(v.get("cell"), Integer.parseInt(v.get("step")), Integer.parseInt(v.get("block")), v.get("kind"), d(v.get("temb_norm")),
                    d(v.get("guided_norm")), d(v.get("offset_norm")), d(v.get("angle_deg")), mod);
        }

        private static double d(String s) {
            return s == null || s.isEmpty() ? Double.NaN : Double.parseDouble(s);
        }

        private static String num(double x) {
            return Double.isNaN(x) ? "" : Double.toString(x);
        }
    }

    private final SweepModel model;
    private final List<String> cellIds;
    private final List<Row> rows = new ArrayList<>();

    /** @param cellIds the cell of each batch row */
    public ModulationStats(SweepModel model, List<String> cellIds) {
        this.model = model;
        this.cellIds = List.copyOf(cellIds);
    }

    public List<Row> rows() {
        return rows;
    }

    @Override
    public void onConditioning(int step, BlockConditioning cond) {
        int batch = cellIds.size();
        int blocks = cond.numBlocks();
        Map<Tensor, double[][]> cache = new IdentityHashMap<>(); // blocks share vectors: read each once
        double[][] temb = rowsOf(cond.temb(), batch, cache);
        @SuppressWarnings("unchecked")
        Map<String, Double>[][] mod = new Map[blocks][batch];
        String[] kind = new String[blocks];
        model.modulations(cond, (block, stream, name, vector) -> {
            double[][] v = rowsOf(vector, batch, null);
            kind[block] = stream.equals("single") ? "single" : "double";
            for (int b = 0; b < batch; b++) {
                if (mod[block][b] == null) mod[block][b] = new LinkedHashMap<>();
                mod[block][b].put(stream + "_" + name, norm(v[b]));
            }
        });
        for (int l = 0; l < blocks; l++) {
            double[][] guided = rowsOf(cond.vector(l), batch, cache);
            double[][] offset = cond.offset(l) == null ? null : rowsOf(cond.offset(l), batch, cache);
            for (int b = 0; b < batch; b++) {
                double tn = norm(temb[b]);
                double on = offset == null ? 0 : norm(offset[b]);
                double angle = on == 0 ? Double.NaN : Math.toDegrees(Math.acos(Math.max(-1, Math.min(1, dot(temb[b], offset[b]) / (tn * on)))));
                rows.add(new Row(cellIds.get(b), step, l, kind[l] == null ? "block" : kind[l], tn, norm(guided[b]), on, angle,
                        mod[l][b] == null ? Map.of() : mod[l][b]));
            }
        }
    }

    private static double[][] rowsOf(Tensor t, int batch, Map<Tensor, double[][]> cache) {
        if (cache != null && cache.containsKey(t)) return cache.get(t);
        float[] f = Tensors.toFloats(t);
        int d = f.length / batch;
        double[][] out = new double[batch][d];
        for (int b = 0; b < batch; b++) for (int i = 0; i < d; i++) out[b][i] = f[b * d + i];
        if (cache != null) cache.put(t, out);
        return out;
    }

    static double norm(double[] v) {
        return Math.sqrt(dot(v, v));
    }

    static double dot(double[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) s += a[i] * b[i];
        return s;
    }
}
