package io.mmdit4j.server;

import io.mmdit4j.models.ModelDescriptor;
import io.mmdit4j.pipeline.LoadOptions;
import io.mmdit4j.pipeline.Pipeline;
import io.mmdit4j.pipeline.Pipelines;
import io.mmdit4j.pipeline.PreparedModel;
import io.mmdit4j.runtime.DType;
import io.mmdit4j.runtime.DeviceSpec;
import io.mmdit4j.runtime.Torch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.net.InetAddress;
import java.time.Duration;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;

/** {@code mmdit serve}: loads one model and serves it over HTTP until interrupted (Ctrl-C or SIGTERM: a graceful stop). */
@Command(name = "serve", mixinStandardHelpOptions = true,
        description = {"Serve one model over HTTP: OpenAI's POST /v1/images/generations, the native POST /v1/generations (every setting, "
                + "modulation guidance included) with progress, events and cancellation, GET /v1/models, /health, /metrics (Prometheus) "
                + "and a web page at /. Requests with the same size and text length share forwards (continuous batching).",
                "Security defaults: binds to 127.0.0.1; with --token or $MMDIT_TOKEN every /v1 and /metrics request needs "
                        + "'Authorization: Bearer <token>'; bodies, prompts, images, steps and sizes are bounded."})
final class ServeCommand implements Callable<Integer> {
    @Option(names = "--model", defaultValue = "flux-tiny-demo", description = "a model name, diffusers folder or checkpoint (default: ${DEFAULT-VALUE})")
    String model;
    @Option(names = "--host", defaultValue = "127.0.0.1", description = "address to bind (default: ${DEFAULT-VALUE}, loopback only)")
    String host;
    @Option(names = "--port", defaultValue = "8080", description = "port (default: ${DEFAULT-VALUE}; 0 picks a free one)")
    int port;
    @Option(names = "--max-batch", defaultValue = "4", description = "images per forward; also the most images one request may ask for (default: ${DEFAULT-VALUE})")
    int maxBatch;
    @Option(names = "--queue", defaultValue = "64", description = "requests that may wait; more are refused with 429 (default: ${DEFAULT-VALUE})")
    int queue;
    @Option(names = "--token", description = "bearer token required on /v1 and /metrics (default: $MMDIT_TOKEN, else none)")
    String token;
    @Option(names = "--max-steps", defaultValue = "100", description = "the most steps a request may ask for (default: ${DEFAULT-VALUE})")
    int maxSteps;
    @Option(names = "--max-size", defaultValue = "1024", description = "the largest image side in pixels (default: ${DEFAULT-VALUE})")
    int maxSize;
    @Option(names = "--max-prompt-chars", defaultValue = "2000", description = "the longest prompt in characters (default: ${DEFAULT-VALUE})")
    int maxPromptChars;
    @Option(names = "--max-body", defaultValue = "65536", description = "the largest request body in bytes (default: ${DEFAULT-VALUE})")
    long maxBody;
    @Option(names = "--keep-results", defaultValue = "64", description = "finished generations kept for GET (default: ${DEFAULT-VALUE})")
    int keepResults;
    @Option(names = "--result-ttl", defaultValue = "600", description = "seconds a finished generation is kept (default: ${DEFAULT-VALUE})")
    long resultTtl;
    @Option(names = "--grace", defaultValue = "30", description = "seconds running generations may take to finish at shutdown before they are cancelled (default: ${DEFAULT-VALUE})")
    long grace;
    @Option(names = "--dtype", description = "fp32 or bf16 (default: the model's)")
    String dtype;
    @Option(names = "--device", defaultValue = "cpu", description = "cpu or cuda[:N] (default: ${DEFAULT-VALUE})")
    String device;
    @Option(names = "--threads", description = "CPU threads (default: all cores)")
    Integer threads;
    @Option(names = "--no-mmap", description = "read the weights into memory (a server's checkpoint files may then change under it safely)")
    boolean noMmap;

    @Override
    public Integer call() throws Exception {
        if (threads != null) Torch.setThreads(threads);
        String t = token != null ? token : System.getenv("MMDIT_TOKEN");
        if (t != null && t.isBlank()) t = null;
        if (maxBatch < 1 || maxBatch > 64) throw new IllegalArgumentException("--max-batch must be in 1..64, got " + maxBatch);
        if (queue < 1) throw new IllegalArgumentException("--queue must be >= 1, got " + queue);
        LoadOptions.Builder load = LoadOptions.builder().device(DeviceSpec.parse(device)).memoryMapped(!noMmap);
        if (dtype != null) load.dtype(DType.parse(dtype));
        PreparedModel prepared = Pipelines.prepare(model, load.build());
        ModelDescriptor d = prepared.descriptor();
        if (d != null && d.isGenerated()) System.err.println("note: " + d.name() + " is a bundled demo model (random weights): its images look like noise");
        boolean loopback = InetAddress.getByName(host).isLoopbackAddress();
        if (!loopback && t == null) {
            System.err.println("mmdit serve: warning: listening on " + host + " without a token: anyone who can reach it can generate (set --token or MMDIT_TOKEN)");
        }
        GenerationServer.Options o = GenerationServer.Options.defaults();
        o = new GenerationServer.Options(host, port, maxBatch, queue, t,
                new ServerLimits(maxBatch, maxSteps, maxSize, maxPromptChars, ServerLimits.DEFAULTS.maxDirections(), maxBody),
                keepResults, Duration.ofSeconds(resultTtl), Duration.ofSeconds(grace));
        long t0 = System.nanoTime();
        Pipeline pipeline = prepared.load();
        GenerationServer server;
        try {
            server = GenerationServer.start(pipeline, o);
        } catch (RuntimeException e) {
            pipeline.close();
            throw e;
        }
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            System.err.println("mmdit serve: stopping (running generations get " + grace + " s to finish)...");
            try {
                server.close();
            } finally {
                pipeline.close();
                stopped.countDown();
            }
            System.err.println("mmdit serve: stopped");
        }, "mmdit-shutdown"));
        System.err.printf(Locale.ROOT, "mmdit serve: %s (%s, %s) loaded in %.1f s; %s, max batch %d, queue %d, %s%n", prepared.model(),
                pipeline.family().name(), pipeline.dtype().torchName(), (System.nanoTime() - t0) / 1e9,
                server.continuousBatching() ? "continuous batching" : "one request at a time (this family has no row stepping)",
                maxBatch, queue, t == null ? "no token" : "bearer token required");
        System.out.println("mmdit serve: listening on " + server.baseUrl() + "/");
        System.out.flush();
        stopped.await();
        return 0;
    }
}
