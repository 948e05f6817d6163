package io.mmdit4j.research;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.mmdit4j.guidance.NormControl;
import io.mmdit4j.image.PngImages;
import io.mmdit4j.pipeline.GenerationSettings;
import io.mmdit4j.runtime.Files2;
import io.mmdit4j.runtime.Tensors;
import org.bytedeco.pytorch.Tensor;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * Runs a {@link SweepSpec}: every grid cell plus the unguided ({@code w = 0}) reference of each prompt and seed, in batches,
 * skipping cells already finished (identity {@link SweepCell#id}; finished = its image exists and results.csv has its row).
 * The model is only loaded when some cell is left to do. Output folder:
 * <pre>
 *   images/&lt;cell&gt;.png     each image, with its settings as PNG text (as {@code generate} writes them; {@code generate --from} repeats it)
 *   results.csv, .jsonl     one row per cell (settings, reference cell, mean SSIM against the reference; with an analyzer,
 *                           what it reads from the image: {@link #resultColumns()})
 *   stats.csv, .jsonl       modulation statistics per cell, step and block ({@link ModulationStats})
 *   sheets/*.png            contact sheets: rows and columns as the spec's layout, one sheet per value of the other axes
 *   spec.json               the effective spec
 * </pre>
 * Per batch, images are written first, then statistics, then the results rows, which mark the cells finished; rows of an
 * interrupted batch are dropped on the next run.
 */
public final class SweepRunner {
    /** The columns of every sweep's results; the spec's analyzer adds its own after them ({@link #resultColumns()}). */
    public static final List<String> RESULT_COLUMNS = List.of("cell", "image", "prompt", "seed", "direction", "pos", "neg", "w", "layers",
            "step_window", "norm_control", "reference", "ssim", "batch_rows");
    private static final ObjectMapper JSON = new ObjectMapper();

    /** What a run did. {@code forwards}: transformer forwards (batched) run; {@code generated}: cells made now. */
    public record Summary(int gridPoints, int cells, int generated, int skipped, int forwards, int batches, List<Path> sheets) {}

    /** A position in the grid: the index of each axis value, and the cell made there (a w = 0 point is its reference). */
    public record Point(Map<String, Integer> coords, SweepCell cell) {}

    private final SweepSpec spec;
    private final SweepSettings settings;
    private final Path out;
    private final Consumer<String> log;

    public SweepRunner(SweepSpec spec, SweepSettings settings, Path out, Consumer<String> log) {
        this.spec = spec;
        this.settings = settings;
        this.out = out;
        this.log = log == null ? s -> { } : log;
    }

    public Path resultsCsv() { return out.resolve("results.csv"); }
    public Path statsCsv() { return out.resolve("stats.csv"); }
    public Path imageFile(String id) { return out.resolve("images").resolve(id + ".png"); }

    /** This sweep's results columns: {@link #RESULT_COLUMNS}, then the analyzer's (none without one). */
    public List<String> resultColumns() { return columns(spec.analyze()); }

    private static List<String> columns(SweepAnalyzer a) {
        List<String> c = new ArrayList<>(RESULT_COLUMNS);
        c.addAll(a.columns);
        return List.copyOf(c);
    }

    // ------------------------------------------------------------------------------------------------ the grid

    /** Every grid point in axis order (prompt, seed, w, layers, steps, direction, norm), the last axis fastest. */
    public List<Point> grid() {
        List<Point> points = new ArrayList<>();
        for (int p = 0; p < spec.prompts().size(); p++)
            for (int s = 0; s < spec.seeds().size(); s++)
                for (int w = 0; w < spec.w().size(); w++)
                    for (int l = 0; l < spec.layers().size(); l++)
                        for (int t = 0; t < spec.stepWindows().size(); t++)
                            for (int d = 0; d < spec.directions().size(); d++)
                                for (int n = 0; n < spec.normControl().size(); n++) {
                                    Map<String, Integer> c = new LinkedHashMap<>();
                                    c.put("prompt", p); c.put("seed", s); c.put("w", w); c.put("layers", l); c.put("steps", t);
                                    c.put("direction", d); c.put("norm", n);
                                    SweepCell cell = new SweepCell(spec.prompts().get(p), spec.seeds().get(s), spec.directions().get(d),
                                            spec.w().get(w), spec.layers().get(l), spec.stepWindows().get(t),
                                            NormControl.parse(spec.normControl().get(n))).canonical();
                                    points.add(new Point(Map.copyOf(c), cell));
                                }
        return points;
    }

    /** The distinct cells to make: the references first (each prompt and seed), then the grid's, in grid order. */
    public Map<String, SweepCell> cells() {
        Map<String, SweepCell> cells = new LinkedHashMap<>();
        for (String p : spec.prompts()) for (long s : spec.seeds()) put(cells, SweepCell.reference(p, s));
        for (Point pt : grid()) put(cells, pt.cell());
        return cells;
    }

    private void put(Map<String, SweepCell> cells, SweepCell c) {
        cells.putIfAbsent(c.id(settings), c);
    }

    // ------------------------------------------------------------------------------------------------ running

    private java.util.function.BiConsumer<Integer, Integer> progress = (done, total) -> { };

    /** Told after every batch how many of the cells to make are made ({@code done, total}). */
    public SweepRunner progress(java.util.function.BiConsumer<Integer, Integer> progress) {
        this.progress = progress == null ? (done, total) -> { } : progress;
        return this;
    }

    public Summary run(Supplier<SweepModel> loader) throws IOException {
        checkAnalyzer();
        Files.createDirectories(out.resolve("images"));
        writeAtomically(out.resolve("spec.json"), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(spec.toJson()) + "\n");
        List<Point> grid = grid();
        Map<String, SweepCell> cells = cells();
        Map<String, List<String>> done = finishedRows();
        List<SweepCell> pending = new ArrayList<>();
        cells.forEach((id, c) -> { if (!done.containsKey(id)) pending.add(c); });
        log.accept(String.format(Locale.ROOT, "sweep: %d grid points, %d distinct cells (with references), %d finished, %d to make",
                grid.size(), cells.size(), cells.size() - pending.size(), pending.size()));
        int forwards = 0, batches = 0;
        if (!pending.isEmpty()) {
            dropUnfinished(done.keySet());
            int[] count = {0};
            try (SweepModel model = loader.get()) {
                for (String l : spec.layers()) {
                    model.checkLayers(l);
                    String unreachable = io.mmdit4j.guidance.LayerSchedule.parse(l).unreachable(model.numBlocks());
                    if (unreachable != null) log.accept("sweep: warning: " + unreachable + " (its cells equal their w = 0 reference)");
                }
                Map<String, BufferedImage> made = new HashMap<>();
                int cellsDone = 0;
                progress.accept(0, pending.size());
                for (List<SweepCell> batch : batches(pending)) {
                    batches++;
                    runBatch(model, batch, made, () -> count[0]++);
                    cellsDone += batch.size();
                    progress.accept(cellsDone, pending.size());
                }
            }
            forwards = count[0];
        }
        List<Path> sheets = writeSheets(grid);
        return new Summary(grid.size(), cells.size(), pending.size(), cells.size() - pending.size(), forwards, batches, sheets);
    }

    /** Consecutive cells up to the batch size; a batch's guided rows share one norm control. */
    List<List<SweepCell>> batches(List<SweepCell> pending) {
        List<List<SweepCell>> out = new ArrayList<>();
        List<SweepCell> cur = new ArrayList<>();
        NormControl curNorm = null;
        for (SweepCell c : pending) {
            NormControl n = c.isReference() ? null : c.norm();
            if (cur.size() == spec.batch() || (n != null && curNorm != null && n != curNorm)) {
                out.add(cur);
                cur = new ArrayList<>();
                curNorm = null;
            }
            cur.add(c);
            if (n != null) curNorm = n;
        }
        if (!cur.isEmpty()) out.add(cur);
        return out;
    }

    /** @param made reference images made or read so far (for SSIM), by cell id */
    private void runBatch(SweepModel model, List<SweepCell> batch, Map<String, BufferedImage> made, Runnable onForward) throws IOException {
        List<String> ids = batch.stream().map(c -> c.id(settings)).toList();
        NormControl norm = batch.stream().filter(c -> !c.isReference()).map(SweepCell::norm).findFirst().orElse(NormControl.NONE);
        ModulationStats stats = spec.stats() ? new ModulationStats(model, ids) : null;
        Tensor images = model.generate(batch, norm, stats, onForward);
        Map<String, BufferedImage> mine = new HashMap<>();
        Map<String, List<Object>> analyzed = new HashMap<>();
        try {
            for (int i = 0; i < batch.size(); i++) {
                BufferedImage img = PngImages.toRgb(images.select(0, i));
                PngImages.write(imageFile(ids.get(i)), img, metadata(batch.get(i), ids.get(i), model.family()));
                mine.put(ids.get(i), img);
                analyzed.put(ids.get(i), spec.analyze().fields(img)); // the pixels written: PNG is lossless
                if (batch.get(i).isReference()) made.put(ids.get(i), img); // only references are kept for later batches
            }
        } finally {
            Tensors.closeAll(List.of(images));
        }
        if (stats != null) {
            StringBuilder csv = new StringBuilder(), jsonl = new StringBuilder();
            for (ModulationStats.Row r : stats.rows()) {
                csv.append(Csv.line(r.csvFields())).append('\n');
                jsonl.append(JSON.writeValueAsString(r.json(JSON))).append('\n');
            }
            append(statsCsv(), Csv.line(ModulationStats.COLUMNS), csv.toString());
            append(out.resolve("stats.jsonl"), null, jsonl.toString());
        }
        StringBuilder csv = new StringBuilder(), jsonl = new StringBuilder();
        for (int i = 0; i < batch.size(); i++) {
            SweepCell c = batch.get(i);
            String refId = c.referenceCell().id(settings);
            BufferedImage ref = made.containsKey(refId) ? made.get(refId) : read(imageFile(refId));
            if (ref != null) made.put(refId, ref);
            double ssim = ref == null ? Double.NaN : Ssim.mean(mine.get(ids.get(i)), ref);
            List<Object> row = resultFields(c, ids.get(i), refId, ssim, batch.size());
            row.addAll(analyzed.get(ids.get(i)));
            csv.append(Csv.line(row)).append('\n');
            ObjectNode o = JSON.createObjectNode();
            List<String> columns = resultColumns();
            for (int k = 0; k < columns.size(); k++) {
                Object v = row.get(k);
                if (v instanceof Integer || v instanceof Long) o.put(columns.get(k), ((Number) v).longValue()); // seed, batch_rows, found
                else if (v instanceof Number n) o.put(columns.get(k), n.doubleValue());
                else o.put(columns.get(k), v == null ? null : v.toString());
            }
            if (Double.isNaN(ssim)) o.putNull("ssim");
            jsonl.append(JSON.writeValueAsString(o)).append('\n');
        }
        append(out.resolve("results.jsonl"), null, jsonl.toString());
        append(resultsCsv(), Csv.line(resultColumns()), csv.toString()); // last: marks the cells finished
    }

    private List<Object> resultFields(SweepCell c, String id, String refId, double ssim, int batchRows) {
        boolean ref = c.isReference();
        return new ArrayList<>(java.util.Arrays.asList(id, out.relativize(imageFile(id)).toString().replace('\\', '/'), c.prompt(), c.seed(),
                ref ? "" : c.direction().label(), ref ? "" : c.direction().pos(), ref ? "" : c.direction().neg(), c.w(), c.layers(),
                c.stepWindow(), c.norm().text(), refId, Double.isNaN(ssim) ? "" : String.format(Locale.ROOT, "%.6f", ssim), batchRows));
    }

    /** The PNG text chunks: as {@code generate} writes them, plus the sweep cell. */
    Map<String, String> metadata(SweepCell c, String id, String family) throws IOException {
        ObjectNode m = JSON.createObjectNode();
        m.put("model", settings.model()).put("family", family);
        m.putArray("prompts").add(c.prompt());
        m.put("seed", c.seed()).put("width", settings.width()).put("height", settings.height()).put("steps", settings.steps())
                .put("guidance_scale", settings.guidanceScale()).put("max_sequence_length", settings.maxSequenceLength())
                .put("images_per_prompt", 1).put("dtype", settings.dtype()).put("sampler", "flow_match_euler");
        if (c.norm() != NormControl.NONE) m.put("mg_norm", c.norm().text());
        var mg = m.putArray("modulation_guidance");
        if (!c.isReference()) {
            mg.addObject().put("label", c.direction().label()).put("pos", c.direction().pos()).put("neg", c.direction().neg()).put("w", c.w())
                    .put("layers", c.layers()).put("steps", c.stepWindow());
        }
        Map<String, String> text = new LinkedHashMap<>(GenerationSettings.ofRecord(m, "sweep cell " + id).metadata(0)); // parameters, seed
        m.put("sweep_cell", id);
        text.put(GenerationSettings.METADATA_KEY, JSON.writeValueAsString(m));
        return text;
    }

    // ------------------------------------------------------------------------------------------------ resuming

    /**
     * Rows of results.csv whose image is intact, by cell id (the finished cells). An image that is missing, cut short, not a
     * PNG or of another size (damaged by hand or by a full disk) leaves its cell unfinished, so the next run makes it again
     * instead of failing on it every time.
     */
    public Map<String, List<String>> finishedRows() throws IOException {
        Map<String, List<String>> done = new LinkedHashMap<>();
        for (List<String> row : readCsvRows(resultsCsv())) {
            if (row.size() == resultColumns().size() && intact(imageFile(row.get(0)))) done.put(row.get(0), row);
        }
        return done;
    }

    /**
     * Refuses an output folder whose results.csv was written with the other analyzer setting: its rows have the other
     * columns, so none would count as finished and every cell would be made again under a changed header. (Other changes
     * of the spec reuse the folder: cell ids say which images fit.)
     */
    private void checkAnalyzer() throws IOException {
        if (!Files.isRegularFile(resultsCsv())) return;
        List<List<String>> rows = Csv.parse(Files.readString(resultsCsv(), StandardCharsets.UTF_8));
        if (rows.isEmpty()) return;
        for (SweepAnalyzer a : SweepAnalyzer.values()) {
            if (a != spec.analyze() && rows.get(0).equals(columns(a))) {
                throw new IllegalArgumentException(String.format(Locale.ROOT,
                        "sweep: %s was written with analyze '%s' and this sweep has analyze '%s'; run it with --analyze %s, or use another --out",
                        resultsCsv(), a.word, spec.analyze().word, a.word));
            }
        }
    }

    /** Images found intact in this run, with the size and time they had then (decoding each once per run is enough). */
    private final Map<Path, String> intactImages = new HashMap<>();

    private boolean intact(Path png) {
        try {
            if (!Files.isRegularFile(png)) return false;
            String stamp = Files.size(png) + "@" + Files.getLastModifiedTime(png);
            if (stamp.equals(intactImages.get(png))) return true;
            BufferedImage img = read(png);
            boolean ok = img != null && img.getWidth() == settings.width() && img.getHeight() == settings.height();
            if (ok) intactImages.put(png, stamp);
            return ok;
        } catch (IOException e) {
            return false;
        }
    }

    /** Data rows (header dropped) of a CSV file, or none. */
    public static List<List<String>> readCsvRows(Path file) throws IOException {
        if (!Files.isRegularFile(file)) return List.of();
        List<List<String>> rows = Csv.parse(Files.readString(file, StandardCharsets.UTF_8));
        return rows.isEmpty() ? rows : rows.subList(1, rows.size());
    }

    /** Rewrites the results and statistics files with the rows of finished cells only (once per resumed run). */
    private void dropUnfinished(Set<String> finished) throws IOException {
        Map<String, List<String>> rows = new LinkedHashMap<>();
        for (List<String> r : readCsvRows(resultsCsv())) if (finished.contains(r.get(0))) rows.put(r.get(0), r);
        rewriteCsv(resultsCsv(), resultColumns(), new ArrayList<>(rows.values()));
        rewriteJsonl(out.resolve("results.jsonl"), finished, true);
        List<List<String>> stats = new ArrayList<>();
        for (List<String> r : readCsvRows(statsCsv())) if (r.size() == ModulationStats.COLUMNS.size() && finished.contains(r.get(0))) stats.add(r);
        rewriteCsv(statsCsv(), ModulationStats.COLUMNS, stats);
        rewriteJsonl(out.resolve("stats.jsonl"), finished, false);
    }

    private void rewriteCsv(Path file, List<String> header, List<List<String>> rows) throws IOException {
        if (!Files.exists(file)) return;
        StringBuilder b = new StringBuilder(Csv.line(header)).append('\n');
        for (List<String> r : rows) b.append(Csv.line(r)).append('\n');
        writeAtomically(file, b.toString());
    }

    private void rewriteJsonl(Path file, Set<String> finished, boolean unique) throws IOException {
        if (!Files.exists(file)) return;
        StringBuilder b = new StringBuilder();
        Set<String> seen = new LinkedHashSet<>();
        for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
            try {
                JsonNode n = JSON.readTree(line);
                String cell = n.path("cell").asText();
                if (finished.contains(cell) && (!unique || seen.add(cell))) b.append(line).append('\n');
            } catch (IOException e) {
                // a line cut short by an interrupted run: dropped
            }
        }
        writeAtomically(file, b.toString());
    }

    private static void append(Path file, String header, String text) throws IOException {
        boolean fresh = !Files.exists(file) || Files.size(file) == 0;
        String s = (fresh && header != null ? header + "\n" : "") + text;
        Files.writeString(file, s, StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
    }

    static void writeAtomically(Path file, String text) throws IOException {
        Path dir = file.toAbsolutePath().getParent();
        Files.createDirectories(dir);
        Path tmp = Files.createTempFile(dir, "." + file.getFileName(), ".part");
        try {
            Files.writeString(tmp, text, StandardCharsets.UTF_8);
            Files2.readableByAll(tmp);
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    /** The image, or null when it is missing or cannot be decoded (a damaged file is a cell to make again, not an error). */
    private static BufferedImage read(Path png) {
        if (!Files.isRegularFile(png)) return null;
        try {
            return ImageIO.read(png.toFile());
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    // ------------------------------------------------------------------------------------------------ sheets

    /**
     * One contact sheet per combination of the axes other than rows and columns: rows and columns labelled with their values,
     * each image captioned with its mean SSIM against the unguided image of its prompt and seed; when the columns are not
     * prompts or seeds, a first column shows that reference.
     */
    public List<Path> writeSheets(List<Point> grid) throws IOException {
        Map<String, List<String>> results = finishedRows();
        String rowsAxis = spec.rows(), colsAxis = spec.cols();
        List<String> others = SweepSpec.AXES.stream().filter(a -> !a.equals(rowsAxis) && !a.equals(colsAxis)).toList();
        Map<List<Integer>, Map<List<Integer>, SweepCell>> sheets = new LinkedHashMap<>();
        for (Point p : grid) {
            List<Integer> key = others.stream().map(a -> p.coords().get(a)).toList();
            sheets.computeIfAbsent(key, k -> new LinkedHashMap<>()).put(List.of(p.coords().get(rowsAxis), p.coords().get(colsAxis)), p.cell());
        }
        boolean refColumn = !colsAxis.equals("prompt") && !colsAxis.equals("seed");
        int nr = spec.axisSize(rowsAxis), nc = spec.axisSize(colsAxis);
        List<Path> files = new ArrayList<>();
        for (Map.Entry<List<Integer>, Map<List<Integer>, SweepCell>> e : sheets.entrySet()) {
            Map<String, BufferedImage> cache = new HashMap<>(); // one sheet's images at a time
            Map<List<Integer>, SweepCell> at = e.getValue();
            SweepCell any = at.values().iterator().next();
            StringBuilder name = new StringBuilder("sheet");
            List<String> fixed = new ArrayList<>();
            for (int k = 0; k < others.size(); k++) {
                String axis = others.get(k);
                if (spec.axisSize(axis) > 1) name.append('-').append(axis).append(e.getKey().get(k));
                fixed.add(axis + ": " + axisValue(axis, e.getKey().get(k)));
            }
            String title = String.join(" · ", fixed) + String.format(Locale.ROOT, "\n%s, %dx%d, %d steps; captions: mean SSIM against the unguided (w=0) image",
                    settings.model(), settings.width(), settings.height(), settings.steps());
            List<String> rowLabels = new ArrayList<>(), colLabels = new ArrayList<>();
            for (int r = 0; r < nr; r++) rowLabels.add(axisLabel(rowsAxis, r));
            if (refColumn) colLabels.add("reference (w=0)");
            for (int c = 0; c < nc; c++) colLabels.add(axisLabel(colsAxis, c));
            List<List<ContactSheet.Cell>> cells = new ArrayList<>();
            for (int r = 0; r < nr; r++) {
                List<ContactSheet.Cell> row = new ArrayList<>();
                if (refColumn) {
                    SweepCell first = at.get(List.of(r, 0));
                    row.add(sheetCell((first != null ? first : any).referenceCell(), results, cache, "reference"));
                }
                for (int c = 0; c < nc; c++) {
                    SweepCell cell = at.get(List.of(r, c));
                    row.add(cell == null ? new ContactSheet.Cell(null, "") : sheetCell(cell, results, cache, null));
                }
                cells.add(row);
            }
            Path file = out.resolve("sheets").resolve(name + ".png");
            ContactSheet.write(file, ContactSheet.render(title, rowLabels, colLabels, cells), title);
            files.add(file);
        }
        return files;
    }

    private ContactSheet.Cell sheetCell(SweepCell c, Map<String, List<String>> results, Map<String, BufferedImage> cache, String caption) {
        String id = c.id(settings);
        List<String> row = results.get(id);
        BufferedImage img = row == null ? null : cache.computeIfAbsent(id, k -> read(imageFile(k)));
        String ssim = row == null ? "" : row.get(RESULT_COLUMNS.indexOf("ssim"));
        String cap = caption != null ? caption : row == null ? "not made" : ssim.isEmpty() ? "" : "SSIM " + ssim.substring(0, Math.min(5, ssim.length()));
        if (caption == null && c.isReference()) cap = "= reference";
        return new ContactSheet.Cell(img, cap);
    }

    private String axisValue(String axis, int i) {
        return switch (axis) {
            case "prompt" -> spec.prompts().get(i);
            case "seed" -> Long.toString(spec.seeds().get(i));
            case "w" -> SweepCell.fmt(spec.w().get(i));
            case "layers" -> spec.layers().get(i);
            case "steps" -> spec.stepWindows().get(i);
            case "direction" -> spec.directions().get(i).label();
            case "norm" -> spec.normControl().get(i);
            default -> throw new IllegalArgumentException(axis);
        };
    }

    private String axisLabel(String axis, int i) {
        String v = axisValue(axis, i);
        return switch (axis) {
            case "w" -> "w=" + v;
            case "layers" -> "layers " + v;
            case "steps" -> "steps " + v;
            case "seed" -> "seed " + v;
            default -> v;
        };
    }
}
