package io.mmdit4j.server;

import com.fasterxml.jackson.databind.JsonNode;
import io.mmdit4j.image.PngImages;
import io.mmdit4j.pipeline.GenerationResult;
import io.mmdit4j.pipeline.GenerationSettings;
import io.mmdit4j.pipeline.LoadOptions;
import io.mmdit4j.pipeline.Pipeline;
import io.mmdit4j.pipeline.Pipelines;
import io.mmdit4j.sampling.StepListener;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The README's demo model, {@code flux-shapes-demo}, whose descriptor turns FLUX's true CFG on (scale 3, empty negative),
 * is served with continuous batching: requests with its default, with their own scale and negative prompt ({@code true_cfg_scale}), and with true CFG off (scale 1)
 * share forwards, and each image is the one the request makes alone (within the ±1 of batch rounding).
 */
class ShapesDemoServingTest {
    @Test
    void theTrueCfgDemoIsServedInBatchesAndEachImageIsItsOwn() throws Exception {
        try (Pipeline pipeline = Pipelines.load("flux-shapes-demo", LoadOptions.defaults());
             GenerationServer server = GenerationServer.start(pipeline, ServerApiTest.options().withPort(0))) {
            assertTrue(server.continuousBatching());
            Http http = new Http(server.baseUrl(), null);
            String[] bodies = {
                    "{\"prompt\": \"three small red circles on a blue background\", \"seed\": 1, \"steps\": 6}",
                    "{\"prompt\": \"a large yellow square\", \"seed\": 2, \"steps\": 4, \"true_cfg_scale\": 2.5, \"negative_prompt\": \"a small square\"}",
                    "{\"prompt\": \"one blue circle\", \"seed\": 4, \"steps\": 3, \"true_cfg_scale\": 1}",
                    "{\"prompt\": \"two green triangles\", \"seed\": 3, \"steps\": 5, \"n\": 2}",
            };
            List<CompletableFuture<Http.Response>> sent = new ArrayList<>();
            for (String b : bodies) sent.add(CompletableFuture.supplyAsync(() -> post(http, b)));
            for (int k = 0; k < bodies.length; k++) {
                Http.Response r = sent.get(k).get();
                assertEquals(200, r.status(), r.body());
                JsonNode done = r.json();
                assertEquals("succeeded", done.get("state").asText(), done.toString());
                for (JsonNode image : done.get("images")) {
                    byte[] png = http.bytes(image.get("url").asText());
                    JsonNode settings = image.get("settings");
                    double expected = k == 1 ? 2.5 : k == 2 ? 1.0 : 3.0;
                    assertEquals(expected, settings.get("true_cfg_scale").asDouble(), "the descriptor's true CFG unless the request sets it: " + settings);
                    GenerationSettings s = pipeline.resolve(GenerationSettings.read(settings, "image").request());
                    try (GenerationResult alone = pipeline.generate(s, StepListener.NONE, null)) {
                        ServerApiTest.assertPixelsWithin(alone.image(0), Http.png(png), 1);
                    }
                    assertEquals(settings.toString(), PngImages.readText(png, "png").get(GenerationSettings.METADATA_KEY));
                    Http.Response again = http.post("/v1/generations?wait=true", settings.toString());
                    assertEquals(200, again.status(), "an image's record is a request the server takes: " + again.body());
                }
            }
            assertEquals("a small square", sent.get(1).get().json().get("images").get(0).get("settings").get("negative_prompt").asText());
        }
    }

    private static Http.Response post(Http http, String body) {
        try {
            return http.post("/v1/generations?wait=true", body);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }
}
