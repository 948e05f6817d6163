package io.mmdit4j.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.mmdit4j.image.PngImages;
import io.mmdit4j.pipeline.GenerationSettings;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The load test of {@code mmdit loadtest}: {@code clients} threads send {@code warmup} and then {@code requests} generation
 * requests (a deterministic mix from a seed) to a server on this machine, each waiting for its result; a fraction is
 * abandoned part way (the connection closed, or DELETE). Every other request must get exactly one result whose images
 * decode and carry its own settings (prompt, seed, steps); the report counts throughput, latency percentiles, the server's
 * batch sizes over the measured phase (from /metrics), errors by status, lost and duplicated results, cancellations the
 * server saw, and its RSS after the warm-up and at the end. Bounded in requests and time; loopback addresses only.
 */
final class LoadTest {
    enum Mix {
        PLAIN, GUIDED, MIXED;

        static Mix parse(String s) {
            try {
                return valueOf(s.trim().toUpperCase(Locale.ROOT));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("--mix must be plain, guided or mixed, got " + s);
            }
        }
    }

    private static final List<String> PROMPTS = List.of("a red fox in the snow", "a lighthouse at dusk", "a bowl of ramen, studio photo",
            "an old sailing ship", "a cat wearing a tiny hat", "mountains at sunrise", "a city street in the rain", "a robot reading a book");
    private static final List<String[]> CUSTOM = List.of(new String[] {"sharp, detailed", "blurry"}, new String[] {"vivid colours", "muted, grey"});
    private static final String[] LAYERS = {"1-", "0-2", "2-", "all"};
    private static final String[] WINDOWS = {"all", "0-1", "1-"};

    private final URI base;
    private final String token;
    private final int clients, requests, warmup, steps, verify;
    private final Mix mix;
    private final String size;
    private final double abort;
    private final long seed;
    private final Duration maxTime;
    private Integer textLength; // max_sequence_length of every request (null: the model's)
    private final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(10)).build();

    LoadTest(URI base, String token, int clients, int requests, int warmup, Mix mix, String size, int steps, double abort, int verify, long seed,
             Duration maxTime) {
        requireLoopback(base);
        this.base = URI.create(base.toString().replaceAll("/+$", ""));
        this.token = token;
        this.clients = clients;
        this.requests = requests;
        this.warmup = warmup;
        this.mix = mix;
        this.size = size;
        this.steps = steps;
        this.abort = abort;
        this.verify = verify;
        this.seed = seed;
        this.maxTime = maxTime;
    }

    static void requireLoopback(URI url) {
        if (!"http".equals(url.getScheme()) || url.getHost() == null) throw new IllegalArgumentException("--url must be http://HOST:PORT, got " + url);
        try {
            for (InetAddress a : InetAddress.getAllByName(url.getHost())) {
                if (!a.isLoopbackAddress()) {
                    throw new IllegalArgumentException("--url " + url + ": the load test only runs against this machine (" + url.getHost() + " is " + a.getHostAddress()
                            + ", not a loopback address)");
                }
            }
        } catch (java.net.UnknownHostException e) {
            throw new IllegalArgumentException("--url " + url + ": unknown host", e);
        }
    }

    /** Every request asks for this text length ({@code max_sequence_length}, both endpoints); null: the model's. */
    LoadTest textLength(Integer tokens) {
        if (tokens != null && (tokens < 1 || tokens > 4096)) throw new IllegalArgumentException("--text-length must be in 1..4096, got " + tokens);
        this.textLength = tokens;
        return this;
    }

    // ------------------------------------------------------------------------------------------ the plan

    enum Abort { NONE, DISCONNECT, DELETE }

    /** One request of the mix. */
    record Plan(int index, boolean openAi, ObjectNode body, int images, String prompt, long seed, int steps, Abort abort, long abortAfterMillis) {}

    private Plan plan(int index, Map<String, Object> model) {
        java.util.SplittableRandom r = new java.util.SplittableRandom(seed * 1_000_003L + index); // mixes nearby seeds (java.util.Random would not)
        long s = (seed << 20) + index * 7919L;
        int maxImages = (int) model.get("max_images");
        boolean embedded = (boolean) model.get("embedded_guidance");
        ObjectNode b = Json.object();
        Abort a = r.nextDouble() < abort ? (r.nextBoolean() ? Abort.DISCONNECT : Abort.DELETE) : Abort.NONE;
        long after = 100 + r.nextInt(900);
        String prompt = PROMPTS.get(mix == Mix.MIXED ? r.nextInt(PROMPTS.size()) : 0);
        String wh = size != null ? size : (String) model.get("size");
        if (mix == Mix.MIXED && a == Abort.NONE && r.nextInt(4) == 0) { // OpenAI's endpoint: no guidance settings there
            b.put("prompt", prompt).put("n", 1).put("size", wh).put("seed", s).put("response_format", r.nextInt(4) == 0 ? "url" : "b64_json");
            if (textLength != null) b.put("max_sequence_length", textLength);
            return new Plan(index, true, b, 1, prompt, s, (int) model.get("steps"), a, after);
        }
        int n = mix == Mix.MIXED && maxImages > 1 && r.nextInt(6) == 0 ? 2 : 1;
        int st = mix == Mix.MIXED ? steps + r.nextInt(steps + 1) : steps;
        // a request the client abandons is a long one (as in life), so that it is abandoned part way and not after its result
        if (a != Abort.NONE) st = Math.min((int) model.get("max_steps"), Math.max(50, 5 * steps));
        b.put("prompt", prompt).put("n", n).put("size", wh).put("steps", st).put("seed", s);
        if (textLength != null) b.put("max_sequence_length", textLength);
        if (mix == Mix.GUIDED) b.putArray("modulation_guidance").addObject().put("preset", "aesthetics");
        if (mix == Mix.MIXED) {
            if (embedded) b.put("guidance_scale", new double[] {2, 3.5, 5}[r.nextInt(3)]);
            int kind = r.nextInt(4);
            if (kind > 0) {
                ObjectNode d = b.putArray("modulation_guidance").addObject();
                if (kind == 3) {
                    String[] pn = CUSTOM.get(r.nextInt(CUSTOM.size()));
                    d.put("pos", pn[0]).put("neg", pn[1]);
                } else {
                    d.put("preset", kind == 1 ? "aesthetics" : "complexity");
                }
                d.put("w", (double) (r.nextInt(9) - 3)).put("layers", LAYERS[r.nextInt(LAYERS.length)]).put("steps", WINDOWS[r.nextInt(WINDOWS.length)]);
            }
        }
        return new Plan(index, false, b, n, prompt, s, st, a, after);
    }

    // ------------------------------------------------------------------------------------------ running

    /** What happened to one request. */
    record Outcome(Plan plan, String kind, int status, double seconds, String jobId, String detail, List<byte[]> pngs) {}

    Report run(PrintStream log) throws Exception {
        Map<String, Object> model = model();
        log.printf(Locale.ROOT, "loadtest: %s, model %s, %d clients, %d warm-up + %d requests, mix %s, abort %.0f%%, text length %s%n", base,
                model.get("id"), clients, warmup, requests, mix.name().toLowerCase(Locale.ROOT), abort * 100, textLength == null ? "the model's" : textLength);
        if (warmup > 0) {
            List<Outcome> w = phase(0, warmup, model, Long.MAX_VALUE);
            long bad = w.stream().filter(o -> !o.kind.equals("ok") && !o.kind.equals("aborted")).count();
            log.printf(Locale.ROOT, "loadtest: warm-up done (%d requests, %d not ok)%n", w.size(), bad);
            idle(Duration.ofSeconds(60));
        }
        Map<String, Double> before = metrics();
        long t0 = System.nanoTime();
        List<Outcome> outcomes = phase(warmup, requests, model, t0 + maxTime.toNanos());
        double wall = (System.nanoTime() - t0) / 1e9;
        boolean idle = idle(Duration.ofSeconds(60));
        Map<String, Double> after = metrics();
        List<String> verified = verify > 0 ? verify(outcomes, log) : List.of();
        return new Report(model, outcomes, wall, before, after, idle, verified, requests);
    }

    private Map<String, Object> model() throws Exception {
        HttpResponse<String> r;
        try {
            r = send(HttpRequest.newBuilder(base.resolve("/v1/models")).GET(), Duration.ofSeconds(30));
        } catch (java.net.ConnectException e) {
            throw new java.io.IOException("--url " + base + ": no server answers there (connection refused); start one with ./mmdit serve", e);
        } catch (java.net.http.HttpTimeoutException e) {
            throw new java.io.IOException("--url " + base + ": the server did not answer GET /v1/models within 30 s", e);
        }
        if (r.statusCode() != 200) throw new IllegalStateException("GET /v1/models: " + r.statusCode() + " " + r.body());
        JsonNode m = Json.MAPPER.readTree(r.body()).get("data").get(0);
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("id", m.get("id").asText());
        out.put("max_images", m.get("limits").get("max_images").asInt());
        out.put("max_steps", m.get("limits").get("max_steps").asInt());
        out.put("size", m.get("defaults").get("width").asInt() + "x" + m.get("defaults").get("height").asInt());
        out.put("steps", m.get("defaults").get("steps").asInt());
        boolean embedded = false;
        for (JsonNode o : m.get("options")) embedded |= o.asText().startsWith("embedded guidance");
        out.put("embedded_guidance", embedded);
        return out;
    }

    private List<Outcome> phase(int first, int count, Map<String, Object> model, long deadline) throws InterruptedException {
        AtomicInteger next = new AtomicInteger();
        List<Outcome> out = Collections.synchronizedList(new ArrayList<>());
        List<Thread> threads = new ArrayList<>();
        for (int c = 0; c < Math.min(clients, count); c++) {
            Thread t = new Thread(() -> {
                int i;
                while ((i = next.getAndIncrement()) < count) {
                    Plan p = plan(first + i, model);
                    out.add(System.nanoTime() > deadline ? new Outcome(p, "not_sent", 0, 0, null, "the time limit passed", List.of()) : one(p));
                }
            }, "loadtest-client-" + c);
            t.start();
            threads.add(t);
        }
        for (Thread t : threads) t.join();
        out.sort((a, b) -> Integer.compare(a.plan.index, b.plan.index));
        return out;
    }

    private Outcome one(Plan p) {
        long t0 = System.nanoTime();
        try {
            if (p.abort == Abort.DELETE) return deleted(p, t0);
            String path = p.openAi ? "/v1/images/generations" : "/v1/generations?wait=true";
            HttpRequest.Builder rb = HttpRequest.newBuilder(base.resolve(path)).header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString(p.body.toString()));
            if (p.abort == Abort.DISCONNECT) {
                CompletableFuture<HttpResponse<String>> f = http.sendAsync(auth(rb).timeout(Duration.ofMinutes(10)).build(), HttpResponse.BodyHandlers.ofString());
                try {
                    HttpResponse<String> r = f.get(p.abortAfterMillis, java.util.concurrent.TimeUnit.MILLISECONDS);
                    return check(p, r, t0); // finished before the client gave up
                } catch (java.util.concurrent.TimeoutException e) {
                    f.cancel(true); // closes the connection: the server must notice and cancel
                    return new Outcome(p, "aborted", 0, seconds(t0), null, "disconnected after " + p.abortAfterMillis + " ms", List.of());
                }
            }
            return check(p, send(rb, Duration.ofMinutes(10)), t0);
        } catch (Exception e) {
            return new Outcome(p, "lost", 0, seconds(t0), null, e.toString(), List.of());
        }
    }

    /** Native request without waiting, then DELETE after a while. */
    private Outcome deleted(Plan p, long t0) throws Exception {
        HttpResponse<String> r = send(HttpRequest.newBuilder(base.resolve("/v1/generations")).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(p.body.toString())), Duration.ofMinutes(1));
        if (r.statusCode() != 202) return new Outcome(p, "error", r.statusCode(), seconds(t0), null, r.body(), List.of());
        String id = Json.MAPPER.readTree(r.body()).get("id").asText();
        Thread.sleep(p.abortAfterMillis);
        HttpResponse<String> d = send(HttpRequest.newBuilder(base.resolve("/v1/generations/" + id)).DELETE(), Duration.ofMinutes(1));
        if (d.statusCode() == 200) return new Outcome(p, "aborted", 200, seconds(t0), id, "deleted after " + p.abortAfterMillis + " ms", List.of());
        if (d.statusCode() == 409 && d.body().contains("already_succeeded")) {
            HttpResponse<String> g = send(HttpRequest.newBuilder(base.resolve("/v1/generations/" + id)).GET(), Duration.ofMinutes(1));
            return check(p, g, t0); // it finished before the DELETE
        }
        return new Outcome(p, "error", d.statusCode(), seconds(t0), id, "DELETE: " + d.body(), List.of());
    }

    /** The response must be this request's one result: its images decode and carry its own prompt, seed and steps. */
    private Outcome check(Plan p, HttpResponse<String> r, long t0) throws Exception {
        double secs = seconds(t0);
        String body = r.body().strip();
        if (r.statusCode() != 200) return new Outcome(p, "error", r.statusCode(), secs, null, body, List.of());
        JsonNode j = Json.MAPPER.readTree(body);
        if (j.has("error")) return new Outcome(p, "error", 200, secs, null, body, List.of()); // an error after the heartbeat started
        List<byte[]> pngs = new ArrayList<>();
        String id = j.path("id").asText(null);
        if (p.openAi) {
            for (JsonNode d : j.get("data")) {
                pngs.add(d.has("b64_json") ? Base64.getDecoder().decode(d.get("b64_json").asText()) : get(URI.create(d.get("url").asText())));
            }
        } else {
            if (!"succeeded".equals(j.path("state").asText())) return new Outcome(p, "error", 200, secs, id, body, List.of());
            for (JsonNode d : j.get("images")) pngs.add(get(base.resolve(d.get("url").asText())));
        }
        String wrong = null;
        if (pngs.size() != p.images) wrong = pngs.size() + " images for " + p.images;
        for (int i = 0; i < pngs.size() && wrong == null; i++) {
            BufferedImage img = ImageIO.read(new ByteArrayInputStream(pngs.get(i)));
            JsonNode rec = Json.MAPPER.readTree(PngImages.readText(pngs.get(i), "image " + i).get(GenerationSettings.METADATA_KEY));
            long expectedSeed = p.seed + i;
            if (img == null) wrong = "image " + i + " does not decode";
            else if (!rec.get("prompts").get(0).asText().equals(p.prompt)) wrong = "image " + i + " has prompt " + rec.get("prompts");
            else if (!Long.toUnsignedString(expectedSeed).equals(rec.get("seed").asText())) wrong = "image " + i + " has seed " + rec.get("seed") + ", expected " + Long.toUnsignedString(expectedSeed);
            else if (rec.get("steps").asInt() != p.steps) wrong = "image " + i + " has " + rec.get("steps") + " steps, expected " + p.steps;
        }
        return new Outcome(p, wrong == null ? "ok" : "wrong", 200, secs, id, wrong, pngs);
    }

    private byte[] get(URI u) throws Exception {
        HttpResponse<byte[]> r = http.send(auth(HttpRequest.newBuilder(u).GET()).timeout(Duration.ofMinutes(1)).build(), HttpResponse.BodyHandlers.ofByteArray());
        if (r.statusCode() != 200) throw new IOException("GET " + u + ": " + r.statusCode());
        return r.body();
    }

    private HttpResponse<String> send(HttpRequest.Builder b, Duration timeout) throws Exception {
        return http.send(auth(b).timeout(timeout).build(), HttpResponse.BodyHandlers.ofString());
    }

    private HttpRequest.Builder auth(HttpRequest.Builder b) {
        return token == null ? b : b.header("Authorization", "Bearer " + token);
    }

    private static double seconds(long t0) {
        return (System.nanoTime() - t0) / 1e9;
    }

    /** Waits until the server has nothing queued or running (cancelled rows gone); false if that takes longer than {@code max}. */
    private boolean idle(Duration max) throws Exception {
        long end = System.nanoTime() + max.toNanos();
        while (System.nanoTime() < end) {
            JsonNode h = Json.MAPPER.readTree(send(HttpRequest.newBuilder(base.resolve("/health")).GET(), Duration.ofSeconds(10)).body());
            if (h.get("queued").asInt() == 0 && h.get("active_images").asInt() == 0) return true;
            Thread.sleep(100);
        }
        return false;
    }

    private static final Pattern SAMPLE = Pattern.compile("^([a-zA-Z_:][a-zA-Z0-9_:]*)(\\{[^}]*})?\\s+(\\S+)$");

    /** The server's metrics, by name and labels. */
    private Map<String, Double> metrics() throws Exception {
        Map<String, Double> out = new TreeMap<>();
        for (String line : send(HttpRequest.newBuilder(base.resolve("/metrics")).GET(), Duration.ofSeconds(30)).body().split("\n")) {
            Matcher m = SAMPLE.matcher(line.trim());
            if (line.startsWith("#") || !m.matches()) continue;
            try {
                out.put(m.group(1) + (m.group(2) == null ? "" : m.group(2)), Double.parseDouble(m.group(3)));
            } catch (NumberFormatException e) {
                // skip
            }
        }
        return out;
    }

    /** Makes finished requests again, one at a time on the idle server, and compares their images with the batched ones. */
    private List<String> verify(List<Outcome> outcomes, PrintStream log) throws Exception {
        List<Outcome> ok = new ArrayList<>(outcomes.stream().filter(o -> o.kind.equals("ok") && !o.plan.openAi).toList());
        Collections.shuffle(ok, new Random(seed));
        List<String> out = new ArrayList<>();
        for (Outcome o : ok.subList(0, Math.min(verify, ok.size()))) {
            Outcome again = check(o.plan, send(HttpRequest.newBuilder(base.resolve("/v1/generations?wait=true")).header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString(o.plan.body.toString())), Duration.ofMinutes(10)), System.nanoTime());
            int worst = 0;
            long differ = 0;
            for (int i = 0; i < o.pngs.size(); i++) {
                BufferedImage a = ImageIO.read(new ByteArrayInputStream(o.pngs.get(i))), b = ImageIO.read(new ByteArrayInputStream(again.pngs.get(i)));
                for (int y = 0; y < a.getHeight(); y++) {
                    for (int x = 0; x < a.getWidth(); x++) {
                        int p = a.getRGB(x, y), q = b.getRGB(x, y);
                        for (int sh = 0; sh <= 16; sh += 8) {
                            int d = Math.abs(((p >> sh) & 255) - ((q >> sh) & 255));
                            worst = Math.max(worst, d);
                            if (d != 0) differ++;
                        }
                    }
                }
            }
            String line = String.format(Locale.ROOT, "request %d: batched vs alone max |diff| %d, %d values differ", o.plan.index, worst, differ);
            log.println("loadtest: verify " + line);
            out.add((worst <= 1 ? "OK " : "MISMATCH ") + line);
        }
        return out;
    }

    // ------------------------------------------------------------------------------------------ the report

    record Report(Map<String, Object> model, List<Outcome> outcomes, double wallSeconds, Map<String, Double> before, Map<String, Double> after,
                  boolean drained, List<String> verified, int requested) {
        long count(String kind) {
            return outcomes.stream().filter(o -> o.kind.equals(kind)).count();
        }

        long images() {
            return outcomes.stream().filter(o -> o.kind.equals("ok")).mapToLong(o -> o.pngs.size()).sum();
        }

        double percentile(double q) {
            double[] s = outcomes.stream().filter(o -> o.kind.equals("ok")).mapToDouble(Outcome::seconds).sorted().toArray();
            if (s.length == 0) return Double.NaN;
            return s[Math.max(0, (int) Math.ceil(q * s.length) - 1)];
        }

        /** Job ids that came back for more than one request. */
        long duplicated() {
            Map<String, Integer> ids = new ConcurrentHashMap<>();
            for (Outcome o : outcomes) if (o.jobId != null && o.kind.equals("ok")) ids.merge(o.jobId, 1, Integer::sum);
            return ids.values().stream().filter(n -> n > 1).count();
        }

        /** Forwards per batch size during the measured phase (from the server's histogram). */
        Map<Integer, Long> batchHistogram() {
            Map<Integer, Long> out = new TreeMap<>();
            long previous = 0;
            for (int size = 1; size <= 64; size++) {
                String key = "mmdit_batch_images_bucket{le=\"" + size + ".0\"}";
                if (!after.containsKey(key)) break;
                long cumulative = Math.round(after.get(key) - before.getOrDefault(key, 0.0));
                out.put(size, cumulative - previous);
                previous = cumulative;
            }
            return out;
        }

        double delta(String key) {
            return after.getOrDefault(key, 0.0) - before.getOrDefault(key, 0.0);
        }

        boolean ok() {
            return count("lost") == 0 && count("wrong") == 0 && duplicated() == 0 && count("error") == 0 && drained
                    && verified.stream().allMatch(v -> v.startsWith("OK"));
        }

        ObjectNode json() {
            ObjectNode o = Json.object();
            o.put("model", (String) model.get("id")).put("requests", requested).put("wall_seconds", round(wallSeconds));
            o.put("images", images()).put("images_per_second", round(images() / wallSeconds));
            o.put("ok", count("ok")).put("aborted", count("aborted")).put("errors", count("error")).put("lost", count("lost"))
                    .put("wrong", count("wrong")).put("duplicated", duplicated()).put("not_sent", count("not_sent"));
            Map<Integer, Long> statuses = new TreeMap<>();
            for (Outcome x : outcomes) if (x.kind.equals("error")) statuses.merge(x.status, 1L, Long::sum);
            ObjectNode st = o.putObject("error_statuses");
            statuses.forEach((k, v) -> st.put(String.valueOf(k), v));
            o.put("latency_p50_s", round(percentile(0.50))).put("latency_p95_s", round(percentile(0.95))).put("latency_p99_s", round(percentile(0.99)));
            ObjectNode h = o.putObject("batch_size_histogram");
            batchHistogram().forEach((k, v) -> h.put(String.valueOf(k), v));
            double cpu = delta("mmdit_process_cpu_seconds_total");
            o.put("server_cpu_seconds", round(cpu)).put("server_cpu_ms_per_image", round(1000 * cpu / Math.max(1, images())));
            o.put("server_cancelled", Math.round(delta("mmdit_requests_total{outcome=\"cancelled\"}")));
            o.put("server_succeeded", Math.round(delta("mmdit_requests_total{outcome=\"succeeded\"}")));
            double rssBefore = before.getOrDefault("mmdit_process_resident_memory_bytes", Double.NaN);
            double rssAfter = after.getOrDefault("mmdit_process_resident_memory_bytes", Double.NaN);
            o.put("rss_mb_before", round(rssBefore / 1e6)).put("rss_mb_after", round(rssAfter / 1e6))
                    .put("rss_growth_percent", round(100 * (rssAfter - rssBefore) / rssBefore));
            o.put("server_drained", drained);
            ArrayNode v = o.putArray("verified");
            verified.forEach(v::add);
            List<String> examples = new ArrayList<>();
            for (Outcome x : outcomes) if (!Set.of("ok", "aborted").contains(x.kind) && examples.size() < 5) examples.add(x.plan.index + " " + x.kind + " " + x.status + ": " + x.detail);
            ArrayNode ex = o.putArray("problems");
            examples.forEach(ex::add);
            o.put("pass", ok());
            return o;
        }

        String summary() {
            ObjectNode j = json();
            StringBuilder b = new StringBuilder();
            b.append(String.format(Locale.ROOT, "%d requests in %.1f s: %d images, %.2f images/s; latency p50 %.2f s, p95 %.2f s, p99 %.2f s%n",
                    requested, wallSeconds, images(), images() / wallSeconds, percentile(0.5), percentile(0.95), percentile(0.99)));
            b.append(String.format(Locale.ROOT, "ok %d, aborted %d (server cancelled %d), errors %d %s, lost %d, wrong %d, duplicated %d, not sent %d%n",
                    count("ok"), count("aborted"), j.get("server_cancelled").asLong(), count("error"), j.get("error_statuses"), count("lost"), count("wrong"),
                    duplicated(), count("not_sent")));
            b.append("batch sizes (forwards): ").append(batchHistogram()).append('\n');
            b.append(String.format(Locale.ROOT, "server CPU %.1f s, %.1f ms per image%n", j.get("server_cpu_seconds").asDouble(),
                    j.get("server_cpu_ms_per_image").asDouble()));
            b.append(String.format(Locale.ROOT, "server RSS %.1f MB -> %.1f MB (%+.2f%%), drained: %s%n", j.get("rss_mb_before").asDouble(),
                    j.get("rss_mb_after").asDouble(), j.get("rss_growth_percent").asDouble(), drained));
            for (String v : verified) b.append("verify: ").append(v).append('\n');
            for (JsonNode p : j.get("problems")) b.append("problem: ").append(p.asText()).append('\n');
            b.append(ok() ? "PASS" : "FAIL");
            return b.toString();
        }

        private static double round(double v) {
            return Math.round(v * 1000) / 1000.0;
        }
    }
}
