package io.mmdit4j.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.javalin.Javalin;
import io.javalin.http.Context;
import io.javalin.http.staticfiles.Location;
import io.mmdit4j.guidance.Presets;
import io.mmdit4j.pipeline.GenerationRequest;
import io.mmdit4j.pipeline.GenerationSettings;
import io.mmdit4j.pipeline.Pipeline;
import jakarta.servlet.http.HttpServletResponse;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Base64;
import java.util.Deque;
import java.util.List;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * {@code mmdit serve}: the HTTP service of one loaded model on Javalin (Jetty). Endpoints: OpenAI's
 * {@code POST /v1/images/generations}, the native {@code POST /v1/generations} (every setting of the generation API) with
 * {@code GET}/{@code DELETE /v1/generations/{id}}, its images and its Server-Sent Events, {@code GET /v1/models},
 * {@code /health}, {@code /metrics} (Prometheus) and the web page at {@code /}. One {@link Scheduler} thread owns the
 * pipeline and batches requests continuously. Security defaults: loopback only unless told otherwise, a bearer token
 * (compared in constant time) when one is configured, bounded bodies, prompts, images, steps and sizes, and a bounded
 * queue.
 */
public final class GenerationServer implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(GenerationServer.class.getName());

    /** How the server runs; {@link #defaults()} binds to 127.0.0.1:8080. */
    public record Options(String host, int port, int maxBatch, int queue, String token, ServerLimits limits, int keepResults,
                          Duration resultTtl, Duration grace) {
        public static Options defaults() {
            return new Options("127.0.0.1", 8080, 4, 64, null, ServerLimits.DEFAULTS, 64, Duration.ofMinutes(10), Duration.ofSeconds(30));
        }

        public Options withPort(int port) {
            return new Options(host, port, maxBatch, queue, token, limits, keepResults, resultTtl, grace);
        }

        public Options withBatch(int maxBatch) {
            return new Options(host, port, maxBatch, queue, token, new ServerLimits(Math.min(limits.maxImages(), maxBatch), limits.maxSteps(),
                    limits.maxSide(), limits.maxPromptChars(), limits.maxDirections(), limits.maxBodyBytes()), keepResults, resultTtl, grace);
        }

        public Options withQueue(int queue) {
            return new Options(host, port, maxBatch, queue, token, limits, keepResults, resultTtl, grace);
        }

        public Options withToken(String token) {
            return new Options(host, port, maxBatch, queue, token, limits, keepResults, resultTtl, grace);
        }

        public Options withLimits(ServerLimits limits) {
            return new Options(host, port, maxBatch, queue, token, limits, keepResults, resultTtl, grace);
        }

        public Options withResults(int keepResults, Duration ttl) {
            return new Options(host, port, maxBatch, queue, token, limits, keepResults, ttl, grace);
        }

        public Options withGrace(Duration grace) {
            return new Options(host, port, maxBatch, queue, token, limits, keepResults, resultTtl, grace);
        }
    }

    private final Pipeline pipeline;
    private final Options options;
    private final RequestParser parser;
    private final ServerMetrics metrics;
    private final Events events;
    private final Scheduler scheduler;
    private final Javalin app;
    private final byte[] tokenDigest;
    private final Deque<Job> finished = new ArrayDeque<>();
    private final String sampler;
    private final java.util.concurrent.atomic.AtomicInteger waiting = new java.util.concurrent.atomic.AtomicInteger(); // clients waiting for results
    private boolean closed;

    private GenerationServer(Pipeline pipeline, Options o) {
        this.pipeline = pipeline;
        this.options = o;
        if (o.limits().maxImages() > o.maxBatch()) throw new IllegalArgumentException("a request may not hold more images than the batch (--max-batch)");
        this.tokenDigest = o.token() == null || o.token().isEmpty() ? null : sha256(o.token());
        this.parser = new RequestParser(o.limits(), pipeline.model());
        this.sampler = pipeline.resolve(GenerationRequest.builder().prompt("probe").build()).sampler();
        Scheduler[] s = new Scheduler[1];
        this.events = new Events((job, reason) -> s[0].cancel(job, reason));
        this.metrics = new ServerMetrics(o.maxBatch(), () -> s[0] == null ? 0 : s[0].queued(), () -> s[0] == null ? 0 : s[0].activeImages(),
                () -> s[0] == null ? 0 : s[0].stepper().encodingCacheHits(), () -> s[0] == null ? 0 : s[0].stepper().encodingCacheMisses());
        this.scheduler = s[0] = new Scheduler(pipeline, o.maxBatch(), o.queue(), metrics, events, this::keep);
        this.app = Javalin.create(config -> {
            config.startup.showJavalinBanner = false;
            config.startup.showOldJavalinVersionWarning = false;
            config.jetty.host = o.host();
            config.jetty.port = o.port();
            config.http.maxRequestSize = o.limits().maxBodyBytes();
            config.staticFiles.add(sf -> {
                sf.hostedPath = "/";
                sf.directory = "/mmdit4j/web";
                sf.location = Location.CLASSPATH;
            });
            config.routes.before("/v1/*", this::authorize);
            config.routes.before("/metrics", this::authorize);
            config.routes.before("/v1/generations/{id}/events", ctx -> job(ctx)); // 404 before the event stream starts
            config.routes.post("/v1/images/generations", this::openAi);
            config.routes.post("/v1/generations", this::create);
            config.routes.get("/v1/generations/{id}", ctx -> json(ctx, 200, Json.job(job(ctx))));
            config.routes.delete("/v1/generations/{id}", this::cancel);
            config.routes.get("/v1/generations/{id}/images/{file}", this::image);
            config.routes.sse("/v1/generations/{id}/events", this::subscribe);
            config.routes.get("/v1/models", this::models);
            config.routes.get("/health", this::health);
            config.routes.get("/metrics", ctx -> ctx.contentType("text/plain; version=0.0.4; charset=utf-8").result(metrics.scrape()));
            config.routes.exception(ApiException.class, (e, ctx) -> json(ctx, e.status, Json.error(e)));
            config.routes.exception(Exception.class, (e, ctx) -> {
                ApiException a = e instanceof io.javalin.http.HttpResponseException h
                        ? new ApiException(h.getStatus(), h.getStatus() == 413 ? "body_too_large" : "http_error", h.getMessage())
                        : Scheduler.error(e);
                json(ctx, a.status, Json.error(a));
            });
            config.routes.error(404, ctx -> {
                if (ctx.attribute(JSON_BODY) == null) { // Javalin's own "not found" (no route, no static file)
                    json(ctx, 404, Json.error(new ApiException(404, "not_found", "no endpoint " + ctx.method() + " " + ctx.path())));
                }
            });
        });
        try {
            app.start();
        } catch (RuntimeException e) {
            scheduler.shutdown(Duration.ZERO);
            events.close();
            metrics.close();
            if (e instanceof io.javalin.util.JavalinBindException) { // a port in use, an address not of this machine: bad input
                throw new IllegalArgumentException("cannot listen on " + o.host() + ":" + o.port() + ": " + e.getMessage(), e);
            }
            throw e;
        }
    }

    /** Starts serving {@code pipeline} (the caller keeps it: close the server first, then the pipeline). */
    public static GenerationServer start(Pipeline pipeline, Options options) {
        return new GenerationServer(pipeline, options);
    }

    /** The port bound (the one asked for, or the one chosen for port 0). */
    public int port() {
        return app.port();
    }

    public String baseUrl() {
        String host = options.host().contains(":") ? "[" + options.host() + "]" : options.host();
        return "http://" + host + ":" + port();
    }

    public boolean continuousBatching() {
        return scheduler.continuousBatching();
    }

    /** A job by id (null when unknown or expired); tests. */
    Job job(String id) {
        return scheduler.job(id);
    }

    // ------------------------------------------------------------------------------------------ handlers

    private void authorize(Context ctx) {
        if (tokenDigest == null) return;
        String h = ctx.header("Authorization");
        String given = h != null && h.regionMatches(true, 0, "Bearer ", 0, 7) ? h.substring(7).trim() : null;
        // digests of equal length, compared in constant time: neither the token's content nor its length leaks
        if (given == null || !MessageDigest.isEqual(tokenDigest, sha256(given))) {
            ctx.header("WWW-Authenticate", "Bearer");
            throw new ApiException(401, given == null ? "missing_token" : "invalid_token",
                    given == null ? "this server needs a bearer token (Authorization: Bearer <token>)" : "the bearer token is not valid");
        }
    }

    /**
     * The request body, at most {@code max_body_bytes}. A larger one is answered 413; up to {@link #drainLimit} bytes of it
     * are read and dropped first, because a client still sending its body when the server answers and closes gets a broken
     * pipe instead of the answer (seen once in {@code ServerApiTest}); a body beyond that is cut off.
     */
    private byte[] body(Context ctx) {
        long max = options.limits().maxBodyBytes();
        long declared = ctx.req().getContentLengthLong();
        try (InputStream in = ctx.req().getInputStream()) {
            if (declared > max) {
                if (declared <= drainLimit(max)) drain(in, declared);
                throw new ApiException(413, "body_too_large", "the request body has " + declared + " bytes: at most " + max);
            }
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            byte[] buf = new byte[8192];
            int n;
            while ((n = in.read(buf)) > 0) {
                out.write(buf, 0, n);
                if (out.size() > max) {
                    drain(in, drainLimit(max) - out.size());
                    throw new ApiException(413, "body_too_large", "the request body exceeds " + max + " bytes");
                }
            }
            return out.toByteArray();
        } catch (IOException e) {
            throw ApiException.invalid("cannot read the request body: " + e.getMessage());
        }
    }

    /** How much of an oversize body is read (and dropped) before the 413: four times the limit, at least 1 MiB. */
    private static long drainLimit(long max) {
        return Math.max(4 * max, 1L << 20);
    }

    /** Reads and drops up to {@code limit} more bytes of {@code in}. */
    private static void drain(InputStream in, long limit) throws IOException {
        byte[] buf = new byte[8192];
        long left = limit;
        int n;
        while (left > 0 && (n = in.read(buf, 0, (int) Math.min(buf.length, left))) > 0) left -= n;
    }

    private GenerationSettings resolve(GenerationRequest r, JsonNode record) {
        GenerationSettings s;
        try {
            s = pipeline.resolve(r);
        } catch (RuntimeException e) {
            throw Scheduler.error(e);
        }
        ServerLimits l = options.limits();
        if (s.images() > l.maxImages()) throw ApiException.invalid(s.images() + " images: at most " + l.maxImages() + " per request on this server", "n");
        if (s.steps() > l.maxSteps()) throw ApiException.invalid(s.steps() + " steps: at most " + l.maxSteps() + " on this server (--max-steps)", "steps");
        if (s.width() > l.maxSide() || s.height() > l.maxSide()) {
            throw ApiException.invalid(s.width() + "x" + s.height() + ": at most " + l.maxSide() + " pixels a side on this server (--max-size)", "size");
        }
        if (record != null) {
            same(record, "family", s.family());
            same(record, "dtype", s.dtype().torchName());
            same(record, "sampler", sampler);
        }
        return s;
    }

    private static void same(JsonNode record, String key, String actual) {
        JsonNode v = record.get(key);
        if (v != null && !v.isNull() && !v.asText().equals(actual)) {
            throw ApiException.invalid("'" + key + "' is \"" + v.asText() + "\", but this server's model has \"" + actual + "\"", key);
        }
    }

    private void openAi(Context ctx) throws Exception {
        RequestParser.OpenAi r = parser.openAi(body(ctx));
        Job job = scheduler.submit(resolve(r.request(), null));
        String base = ctx.scheme() + "://" + ctx.host();
        awaitAndRespond(ctx, job, j -> {
            ObjectNode o = Json.object();
            o.put("created", j.createdMillis / 1000).put("id", j.id);
            ArrayNode data = o.putArray("data");
            List<Job.Image> images = j.result();
            for (int i = 0; i < images.size(); i++) {
                ObjectNode d = data.addObject();
                if (r.urls()) d.put("url", base + Json.imageUrl(j, i));
                else d.put("b64_json", Base64.getEncoder().encodeToString(images.get(i).png()));
                d.put("revised_prompt", j.settings.prompt(i)).put("seed", Long.toUnsignedString(images.get(i).seed()));
            }
            return o;
        });
    }

    private void create(Context ctx) throws Exception {
        byte[] body = body(ctx);
        GenerationRequest r = parser.nativeRequest(body);
        Job job = scheduler.submit(resolve(r, RequestParser.parse(body)));
        if (bool(ctx, "wait")) {
            awaitAndRespond(ctx, job, Json::job);
            return;
        }
        ctx.header("Location", "/v1/generations/" + job.id);
        json(ctx, 202, Json.job(job));
    }

    /**
     * Waits for {@code job} and answers with its result (or error). After the first second the status (200) and headers
     * go out and a space follows every half second (JSON allows leading whitespace): a client that has gone away is
     * noticed at the next write and its request cancelled. An error after that point is the {@code {"error": ...}} body.
     */
    private void awaitAndRespond(Context ctx, Job job, java.util.function.Function<Job, ObjectNode> success) throws Exception {
        waiting.incrementAndGet();
        try {
            respondWhenDone(ctx, job, success);
        } finally {
            waiting.decrementAndGet();
        }
    }

    private void respondWhenDone(Context ctx, Job job, java.util.function.Function<Job, ObjectNode> success) throws Exception {
        if (job.await(1000)) {
            ObjectNode body = outcome(job, success);
            json(ctx, job.state() == Job.State.SUCCEEDED ? 200 : body.has("error") ? statusOf(job) : 200, body);
            return;
        }
        HttpServletResponse res = ctx.res();
        res.setStatus(200);
        res.setContentType("application/json");
        res.setHeader("Cache-Control", "no-store");
        OutputStream out = res.getOutputStream();
        try {
            while (!job.await(500)) {
                out.write(' ');
                out.flush();
            }
            out.write(outcome(job, success).toString().getBytes(StandardCharsets.UTF_8));
            // closed here, not after the handler returns: that writes the chunked body's last chunk now, so close() (which
            // waits for this handler) cannot stop Jetty between the outcome and the end of the response
            out.close();
        } catch (IOException e) {
            scheduler.cancel(job, "the client disconnected");
        }
    }

    private static ObjectNode outcome(Job job, java.util.function.Function<Job, ObjectNode> success) {
        return switch (job.state()) {
            case SUCCEEDED -> success.apply(job);
            case FAILED -> Json.error(job.error());
            default -> Json.error(new ApiException(409, "cancelled", "the generation was cancelled: " + job.cancelReason()));
        };
    }

    private static int statusOf(Job job) {
        return job.state() == Job.State.FAILED ? job.error().status : 409;
    }

    private Job job(Context ctx) {
        Job job = scheduler.job(ctx.pathParam("id"));
        if (job == null) throw new ApiException(404, "not_found", "no generation '" + ctx.pathParam("id") + "' (unknown, or its results expired)", "id");
        return job;
    }

    private void cancel(Context ctx) throws InterruptedException {
        Job job = job(ctx);
        if (!scheduler.cancel(job, "cancelled by DELETE")) {
            throw new ApiException(409, "already_" + job.state().text(), "the generation has already " + (job.state() == Job.State.CANCELLED ? "been cancelled" : job.state().text()));
        }
        job.await(5000); // a running job is dropped before the next step
        json(ctx, 200, Json.job(job));
    }

    private void image(Context ctx) {
        Job job = job(ctx);
        String file = ctx.pathParam("file");
        int i;
        try {
            if (!file.endsWith(".png")) throw new NumberFormatException();
            i = Integer.parseInt(file.substring(0, file.length() - 4));
        } catch (NumberFormatException e) {
            throw new ApiException(404, "not_found", "no image '" + file + "' (images are 0.png, 1.png, ...)");
        }
        if (job.state() != Job.State.SUCCEEDED) throw new ApiException(409, "not_ready", "the generation is " + job.state().text() + ": no images yet");
        List<Job.Image> images = job.result();
        if (i < 0 || i >= images.size()) throw new ApiException(404, "not_found", "no image " + i + " (the generation made " + images.size() + ")");
        ctx.contentType("image/png").header("Cache-Control", "private, max-age=600")
                .header("Content-Disposition", "inline; filename=\"" + job.id + "-" + i + ".png\"").result(images.get(i).png());
    }

    private void subscribe(io.javalin.http.sse.SseClient client) {
        Context ctx = client.ctx();
        Job job = scheduler.job(ctx.pathParam("id"));
        if (job == null) {
            client.close();
            return;
        }
        client.keepAlive();
        Job.State state = job.state();
        String event = switch (state) {
            case SUCCEEDED -> "done";
            case FAILED -> "error";
            case CANCELLED -> "cancelled";
            default -> "state";
        };
        events.subscribe(new Events.Subscriber(job, client, bool(ctx, "previews"), bool(ctx, "cancel_on_disconnect")), event, Json.state(job),
                state.terminal());
    }

    private void models(Context ctx) {
        ObjectNode o = Json.object().put("object", "list");
        ObjectNode m = o.putArray("data").addObject();
        m.put("id", pipeline.model()).put("object", "model").put("owned_by", "mmdit4j").put("family", pipeline.family().name())
                .put("dtype", pipeline.dtype().torchName()).put("guided_blocks", pipeline.numGuidedBlocks())
                .put("continuous_batching", scheduler.continuousBatching()).put("max_batch", options.maxBatch());
        GenerationSettings d = pipeline.resolve(GenerationRequest.builder().prompt("probe").build());
        m.putObject("defaults").put("width", d.width()).put("height", d.height()).put("steps", d.steps())
                .put("max_sequence_length", d.maxSequenceLength());
        ArrayNode presets = m.putArray("presets");
        Presets.all().forEach(p -> presets.add(p.name()));
        ArrayNode opts = m.putArray("options");
        pipeline.supportedOptions().forEach(c -> opts.add(io.mmdit4j.pipeline.GenerationOptions.describe(c)));
        ServerLimits l = options.limits();
        m.putObject("limits").put("max_images", l.maxImages()).put("max_steps", l.maxSteps()).put("max_side", l.maxSide())
                .put("max_prompt_chars", l.maxPromptChars()).put("max_directions", l.maxDirections()).put("max_body_bytes", l.maxBodyBytes());
        m.put("auth", tokenDigest != null);
        json(ctx, 200, o);
    }

    private void health(Context ctx) {
        json(ctx, 200, Json.object().put("status", "ok").put("model", pipeline.model()).put("queued", scheduler.queued())
                .put("active_images", scheduler.activeImages()).put("auth", tokenDigest != null));
    }

    private static boolean bool(Context ctx, String param) {
        String v = ctx.queryParam(param);
        return v != null && (v.isEmpty() || v.equals("1") || v.equalsIgnoreCase("true"));
    }

    private static final String JSON_BODY = "mmdit.json";

    private static void json(Context ctx, int status, ObjectNode body) {
        ctx.attribute(JSON_BODY, Boolean.TRUE);
        ctx.status(status).contentType("application/json").result(body.toString());
    }

    // ------------------------------------------------------------------------------------------ results kept

    /**
     * Keeps a finished job for its clients: at most {@code keepResults} of them, none older than the TTL, and PNGs of at
     * most a quarter of the Java heap together.
     */
    private void keep(Job job) {
        synchronized (finished) { // not the server's monitor: close() holds that while the scheduler's threads finish
            finished.addLast(job);
            keptBytes += job.resultBytes();
            long now = System.nanoTime();
            while (!finished.isEmpty() && (finished.size() > options.keepResults() || keptBytes > KEEP_BYTES
                    || now - finished.peekFirst().createdNanos > options.resultTtl().toNanos())) {
                Job old = finished.pollFirst();
                keptBytes -= old.resultBytes();
                scheduler.forget(old);
            }
        }
    }

    private static final long KEEP_BYTES = Runtime.getRuntime().maxMemory() / 4;
    private long keptBytes; // guarded by finished

    private static byte[] sha256(String s) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * Graceful shutdown: stops accepting (503), cancels queued requests, lets running ones finish for up to the grace period
     * (then cancels them), answers their waiting clients, closes event streams and stops every thread. The pipeline stays
     * open.
     */
    @Override
    public synchronized void close() {
        if (closed) return;
        closed = true;
        try {
            scheduler.shutdown(options.grace());
            // every job has ended: let the clients that wait for one get their answer before Jetty closes the connections
            long end = System.nanoTime() + 10_000_000_000L;
            while (waiting.get() > 0 && System.nanoTime() < end) Thread.sleep(10);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            try {
                events.close();
            } finally {
                try {
                    app.stop();
                } catch (RuntimeException e) {
                    LOG.log(Level.WARNING, "stopping Jetty", e);
                }
                metrics.close();
            }
        }
    }
}
