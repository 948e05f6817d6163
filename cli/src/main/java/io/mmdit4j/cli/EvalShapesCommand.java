package io.mmdit4j.cli;

import io.mmdit4j.guidance.Direction;
import io.mmdit4j.pipeline.GenerationRequest;
import io.mmdit4j.pipeline.GenerationResult;
import io.mmdit4j.pipeline.LoadOptions;
import io.mmdit4j.pipeline.Pipeline;
import io.mmdit4j.pipeline.Pipelines;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.shapes.Scene;
import io.mmdit4j.shapes.ShapesAnalyzer;
import io.mmdit4j.shapes.ShapesWorld;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import javax.imageio.ImageIO;
import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code mmdit eval-shapes}: generates pictures for shapes-world captions (every attribute named) and reads them back with
 * the {@link ShapesAnalyzer}: caption accuracy (count, colour, shape, size, all three of count+colour+shape) and, for a
 * guidance direction, how the measured attributes (objects found, mean object area) move with the weight and the layer
 * schedule. Writes {@code eval.csv} (one row per picture), {@code summary.csv} (one row per weight × schedule) and
 * {@code summary.png} (the measured attribute against w, one line per schedule).
 */
@Command(name = "eval-shapes", mixinStandardHelpOptions = true,
        description = "Caption accuracy of a shapes-world model, and how a guidance direction moves the measured attributes with w and the layer schedule.")
final class EvalShapesCommand implements Callable<Integer> {
    @Option(names = "--model", required = true, description = "a FLUX model trained on the shapes world (a diffusers folder or model name)")
    String model;
    @Option(names = "--prompts", defaultValue = "100", description = "captions (default: ${DEFAULT-VALUE})")
    int prompts;
    @Option(names = "--seeds", defaultValue = "1", description = "seeds per caption (default: ${DEFAULT-VALUE})")
    int seeds;
    @Option(names = "--size", defaultValue = "64", description = "picture size (default: ${DEFAULT-VALUE})")
    int size;
    @Option(names = "--steps", description = "sampler steps (default: the model's)")
    Integer steps;
    @Option(names = "--max-sequence-length", description = "T5 tokens (default: the model's; a shapes model wants the length it was trained with, 32 for the recipes)")
    Integer maxSequenceLength;
    @Option(names = "--true-cfg", description = "true classifier-free guidance scale with an empty negative prompt (FLUX's true_cfg_scale; default: the model's)")
    Double trueCfg;
    @Option(names = "--world-seed", defaultValue = "100000", description = "which captions: scenes of this shapes world (default: ${DEFAULT-VALUE}, apart from training's)")
    long worldSeed;
    @Option(names = "--mg-pos", description = "guidance direction: positive prompt, e.g. \"large shapes\"")
    String pos;
    @Option(names = "--mg-neg", description = "guidance direction: negative prompt, e.g. \"small shapes\"")
    String neg;
    @Option(names = "--mg-preset", description = "guidance direction: a preset of the model's descriptor (flux-shapes-demo: count, size) or a built-in one, "
            + "with its prompts and layers (--mg-layers overrides the layers); instead of --mg-pos/--mg-neg")
    String preset;
    @Option(names = "--mg-w", split = ",", defaultValue = "0,1,2,3", description = "weights to compare (default: ${DEFAULT-VALUE})")
    List<Double> weights;
    @Option(names = "--mg-layers", split = ";", description = "layer schedules to compare, ';'-separated, e.g. \"0-2;3-5\" (default: the model's)")
    List<String> schedules;
    @Option(names = "--measure", defaultValue = "area", description = "the attribute plotted against w: area (mean object area, px) or count (objects found) (default: ${DEFAULT-VALUE})")
    String measure;
    @Option(names = "--reconstruct", description = "instead of generating, pass each caption's rendered scene through the model's VAE (encode, "
            + "posterior mean, decode) and read that back: the accuracy the autoencoder allows, a ceiling for the model's")
    boolean reconstruct;
    @Option(names = "--save-images", description = "also write every analysed picture to out/images/ (named by w, layers, caption index and seed), to see what was measured")
    boolean saveImages;
    @Option(names = "--layout", description = "--reconstruct: where the scenes place their objects, arranged, cells or free, as the model was trained "
            + "(default: arranged, the shapes-demo recipe's last stage). Generation reads captions only, which do not say where objects sit")
    String layout;
    @Option(names = "--out", defaultValue = "outputs/eval-shapes", description = "eval.csv, summary.csv, summary.png (default: ${DEFAULT-VALUE})")
    Path out;
    @Mixin
    ThreadsOption threads = new ThreadsOption();

    @Override
    public Integer call() throws Exception {
        threads.apply();
        if (prompts < 1 || seeds < 1) throw new IllegalArgumentException("--prompts and --seeds must be >= 1");
        if (trueCfg != null && !(trueCfg >= 1)) throw new IllegalArgumentException("--true-cfg must be >= 1 (1: off), got " + trueCfg);
        if (!measure.equals("area") && !measure.equals("count")) throw new IllegalArgumentException("--measure " + measure + ": area or count");
        if ((pos == null) != (neg == null)) throw new IllegalArgumentException("--mg-pos and --mg-neg come together");
        if (preset != null && pos != null) throw new IllegalArgumentException("--mg-preset names a direction with its own prompts: not with --mg-pos/--mg-neg");
        boolean guided = pos != null || preset != null;
        if (reconstruct && (guided || trueCfg != null || steps != null || maxSequenceLength != null || seeds != 1)) {
            throw new IllegalArgumentException("--reconstruct measures the VAE alone: not with --mg-*, --true-cfg, --steps, --max-sequence-length or --seeds");
        }
        if (layout != null && !reconstruct) throw new IllegalArgumentException("--layout places the scenes of --reconstruct; generated pictures follow only the captions");
        List<Double> ws = guided ? weights : List.of(0.0);
        List<String> layerSets = guided && schedules != null ? schedules : java.util.Collections.singletonList((String) null);
        ShapesWorld world = new ShapesWorld(size, 1, ShapesWorld.MAX_OBJECTS, worldSeed, layout == null ? ShapesWorld.Layout.ARRANGED : ShapesWorld.Layout.parse(layout));
        Files.createDirectories(out);
        Map<String, double[]> summary = new LinkedHashMap<>(); // key -> {n, count, colour, shape, size, all3, found, area}
        StringBuilder csv = new StringBuilder("prompt_index,prompt,seed,w,layers,count_ok,colour_ok,shape_ok,size_ok,count_colour_shape_ok,found,mean_area\n");
        try (Pipeline pipe = Pipelines.load(model, LoadOptions.builder().dtype(DType.F32).build())) {
            if (reconstruct && !pipe.family().name().equals("flux")) {
                throw new IllegalArgumentException("--reconstruct reads the VAE of a FLUX model trained on the shapes world; " + model + " is a "
                        + pipe.family().name() + " model");
            }
            for (String layers : layerSets) {
                for (double w : ws) {
                    String key = String.format(Locale.ROOT, "%s|%s", w, reconstruct ? "vae-reconstruction" : layers == null ? "model" : layers);
                    double[] acc = summary.computeIfAbsent(key, k -> new double[8]);
                    for (int i = 0; i < prompts; i++) {
                        Scene s0 = world.scene(i);
                        Scene s = world.scene(s0.count(), s0.size(), s0.colour(), s0.shape(), s0.background(), i);
                        GenerationRequest.Builder b = GenerationRequest.builder().prompt(s.caption()).imagesPerPrompt(seeds).size(size, size).seed(i * 1000L);
                        if (steps != null) b.steps(steps);
                        if (maxSequenceLength != null) b.maxSequenceLength(maxSequenceLength);
                        if (trueCfg != null) b.option(new io.mmdit4j.pipeline.TrueCfg(trueCfg, List.of("")));
                        if (guided) {
                            Direction d = (preset != null ? Direction.preset(preset) : Direction.of(pos, neg)).w(w);
                            if (layers != null) d = d.layers(layers);
                            b.guide(d);
                        }
                        if (reconstruct) b = null; // the scene itself goes through the VAE
                        try (GenerationResult r = b == null ? null : pipe.generate(b.build(), st -> true)) {
                            for (int k = 0; k < seeds; k++) {
                                java.awt.image.BufferedImage img = r == null ? reconstructed(pipe, s) : r.image(k);
                                if (saveImages) saveImage(img, out, key, i, i * 1000L + k);
                                ShapesAnalyzer.Analysis a = ShapesAnalyzer.analyze(img);
                                ShapesAnalyzer.Score sc = ShapesAnalyzer.score(s, a);
                                double[] row = {1, b(sc.count()), b(sc.colour()), b(sc.shape()), b(sc.size()), b(sc.countColourShape()), a.count(), a.meanArea()};
                                for (int j = 0; j < row.length; j++) acc[j] += row[j];
                                csv.append(String.format(Locale.ROOT, "%d,\"%s\",%d,%s,%s,%d,%d,%d,%d,%d,%d,%.1f%n", i, s.caption(), i * 1000L + k, w,
                                        key.split("\\|")[1], (int) row[1], (int) row[2], (int) row[3], (int) row[4], (int) row[5], a.count(), a.meanArea()));
                            }
                        }
                    }
                    if (reconstruct) System.err.print("VAE reconstructions: ");
                    System.err.printf(Locale.ROOT, "w %s layers %s: count %.0f%%  colour %.0f%%  shape %.0f%%  size %.0f%%  count+colour+shape %.0f%%  |  found %.2f  area %.1f px (%d pictures)%n",
                            w, key.split("\\|")[1], pct(acc, 1), pct(acc, 2), pct(acc, 3), pct(acc, 4), pct(acc, 5), acc[6] / acc[0], acc[7] / acc[0], (int) acc[0]);
                }
            }
        }
        Files.writeString(out.resolve("eval.csv"), csv);
        StringBuilder sum = new StringBuilder("w,layers,pictures,count_acc,colour_acc,shape_acc,size_acc,count_colour_shape_acc,mean_found,mean_area\n");
        summary.forEach((k, a) -> sum.append(String.format(Locale.ROOT, "%s,%s,%d,%.4f,%.4f,%.4f,%.4f,%.4f,%.3f,%.2f%n", k.split("\\|")[0], k.split("\\|")[1], (int) a[0],
                a[1] / a[0], a[2] / a[0], a[3] / a[0], a[4] / a[0], a[5] / a[0], a[6] / a[0], a[7] / a[0])));
        Files.writeString(out.resolve("summary.csv"), sum);
        plot(summary, out.resolve("summary.png"));
        System.out.println(out.resolve("summary.csv"));
        return 0;
    }

    /** The scene rendered, encoded (posterior mean) and decoded by the pipeline's VAE, as an 8-bit picture. */
    private static java.awt.image.BufferedImage reconstructed(Pipeline pipe, Scene s) {
        io.mmdit4j.vae.AutoencoderKL vae = pipe.unwrap(io.mmdit4j.flux.FluxPipeline.class).vae();
        try (org.bytedeco.javacpp.PointerScope scope = new org.bytedeco.javacpp.PointerScope();
             io.mmdit4j.vae.AutoencoderKL.Encoded e = vae.encode(io.mmdit4j.train.ShapesData.images(List.of(s)))) {
            return io.mmdit4j.image.PngImages.toRgb(vae.toImage(vae.decode(e.mean())).select(0, 0));
        }
    }

    private static void saveImage(java.awt.image.BufferedImage img, Path out, String key, int index, long seed) throws java.io.IOException {
        String[] k = key.split("\\|");
        String name = String.format(Locale.ROOT, "w%s_%s_%03d_seed%d.png", k[0], k[1].replaceAll("[^A-Za-z0-9.-]", "_"), index, seed);
        Path dir = Files.createDirectories(out.resolve("images"));
        ImageIO.write(img, "png", dir.resolve(name).toFile());
    }

    private static double b(boolean x) {
        return x ? 1 : 0;
    }

    private static double pct(double[] a, int j) {
        return 100 * a[j] / a[0];
    }

    /** The measured attribute against w, one line per schedule. */
    private void plot(Map<String, double[]> summary, Path file) throws IOException {
        Map<String, List<double[]>> lines = new LinkedHashMap<>();
        double lo = Double.MAX_VALUE, hi = -Double.MAX_VALUE, wmax = 0;
        for (Map.Entry<String, double[]> e : summary.entrySet()) {
            String[] k = e.getKey().split("\\|");
            double w = Double.parseDouble(k[0]), v = measure.equals("area") ? e.getValue()[7] / e.getValue()[0] : e.getValue()[6] / e.getValue()[0];
            lines.computeIfAbsent(k[1], x -> new ArrayList<>()).add(new double[] {w, v});
            lo = Math.min(lo, v);
            hi = Math.max(hi, v);
            wmax = Math.max(wmax, w);
        }
        if (hi - lo < 1e-9) hi = lo + 1;
        if (wmax == 0) wmax = 1;
        int W = 640, H = 400, L = 70, R = 150, T = 30, B = 50;
        BufferedImage img = new BufferedImage(W, H, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, W, H);
        g.setColor(Color.BLACK);
        g.drawRect(L, T, W - L - R, H - T - B);
        g.drawString("mean " + (measure.equals("area") ? "object area (px)" : "objects found") + " vs w", L, 20);
        g.drawString(String.format(Locale.ROOT, "%.3g", hi), 4, T + 10);
        g.drawString(String.format(Locale.ROOT, "%.3g", lo), 4, H - B);
        g.drawString("w 0", L, H - B + 18);
        g.drawString("w " + wmax, W - R - 40, H - B + 18);
        Color[] colours = {new Color(30, 80, 200), new Color(200, 60, 40), new Color(40, 150, 60), new Color(150, 60, 170), Color.DARK_GRAY};
        int li = 0;
        for (Map.Entry<String, List<double[]>> e : lines.entrySet()) {
            g.setColor(colours[li % colours.length]);
            g.setStroke(new BasicStroke(2f));
            int px = -1, py = -1;
            for (double[] p : e.getValue()) {
                int x = L + (int) Math.round((W - L - R) * p[0] / wmax), y = T + (int) Math.round((H - T - B) * (hi - p[1]) / (hi - lo));
                if (px >= 0) g.drawLine(px, py, x, y);
                g.fillOval(x - 3, y - 3, 6, 6);
                px = x;
                py = y;
            }
            g.drawString("layers " + e.getKey(), W - R + 10, T + 20 + 18 * li);
            li++;
        }
        g.dispose();
        ImageIO.write(img, "png", file.toFile());
    }
}
