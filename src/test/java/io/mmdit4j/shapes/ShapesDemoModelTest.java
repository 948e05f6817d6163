package io.mmdit4j.shapes;

import io.mmdit4j.pipeline.GenerationRequest;
import io.mmdit4j.pipeline.GenerationResult;
import io.mmdit4j.pipeline.GenerationSettings;
import io.mmdit4j.pipeline.LoadOptions;
import io.mmdit4j.pipeline.Pipeline;
import io.mmdit4j.pipeline.Pipelines;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The bundled, trained shapes demo ({@code models/flux-shapes-demo}, made by {@code mmdit train --recipe shapes-demo}):
 * it loads by name with the settings it was trained with, and it draws what it reliably learned — the background and
 * the object colour the caption asks for, in their roles (swapping them was the failure of the models before it).
 * Shapes and counts are not reliable yet (README "Training"), so they are not asserted.
 */
class ShapesDemoModelTest {
    static final ShapesWorld WORLD = new ShapesWorld(64, 1, 4, 0);

    @Test
    void itsDefaultsAreTheTrainingRunsSettings() { // and true CFG 3 with an empty negative prompt: the most faithful colours
        GenerationSettings s = Pipelines.prepare("flux-shapes-demo", LoadOptions.defaults()).resolve(GenerationRequest.builder().prompt("a red circle").build());
        assertEquals(64, s.width());
        assertEquals(64, s.height());
        assertEquals(20, s.steps());
        assertEquals(16, s.maxSequenceLength(), "the T5 length it was trained with: other paddings change the prompt's tokens");
    }

    @Test
    void itDrawsTheBackgroundAndTheObjectColourItIsAskedFor() {
        List<Scene> scenes = List.of(
                WORLD.scene(3, Scene.Size.SMALL, Scene.Palette.RED, Scene.Shape.CIRCLE, Scene.Palette.BLUE, 0),
                WORLD.scene(3, Scene.Size.SMALL, Scene.Palette.BLUE, Scene.Shape.CIRCLE, Scene.Palette.RED, 0), // the same words, roles swapped
                WORLD.scene(2, Scene.Size.LARGE, Scene.Palette.GREEN, Scene.Shape.SQUARE, Scene.Palette.WHITE, 0),
                WORLD.scene(1, Scene.Size.LARGE, Scene.Palette.YELLOW, Scene.Shape.TRIANGLE, Scene.Palette.BLACK, 0),
                WORLD.scene(4, Scene.Size.SMALL, Scene.Palette.WHITE, Scene.Shape.SQUARE, Scene.Palette.GREY, 0),
                WORLD.scene(2, Scene.Size.LARGE, Scene.Palette.BLACK, Scene.Shape.CIRCLE, Scene.Palette.YELLOW, 0));
        List<String> wrong = new ArrayList<>();
        int backgrounds = 0, right = 0;
        try (Pipeline pipe = Pipelines.load("flux-shapes-demo")) {
            for (Scene scene : scenes) {
                String prompt = scene.caption(); // every attribute named: "three small red circles on a blue background"
                for (long seed = 1; seed <= 2; seed++) {
                    try (GenerationResult r = pipe.generate(GenerationRequest.builder().prompt(prompt).seed(seed).build(), step -> true)) {
                        ShapesAnalyzer.Analysis a = ShapesAnalyzer.analyze(r.image(0));
                        if (a.background() == scene.background()) backgrounds++;
                        if (a.background() == scene.background() && a.count() > 0 && a.colour() == scene.colour()) right++;
                        else wrong.add(prompt + " (seed " + seed + "): " + a.background() + " background, " + a.count() + " " + a.colour());
                    }
                }
            }
        }
        // When the weights were committed (defaults: 20 steps, true CFG 3): 12 of 12 backgrounds, 9 of 12 with the objects'
        // colour too (the misses: objects read as grey or red). A model that ignores the roles gets about 1 in 7 backgrounds.
        assertTrue(backgrounds >= 11, backgrounds + " of 12 backgrounds right; wrong: " + wrong);
        assertTrue(right >= 8, right + " of 12 backgrounds and object colours right; wrong: " + wrong);
    }

    @Test
    void itRunsEndToEndOnMeta() { // the shipped model's folder and defaults on the device-agnostic path: shapes only
        try (Pipeline pipe = Pipelines.load("flux-shapes-demo", LoadOptions.builder().device(io.mmdit4j.runtime.DeviceSpec.META).build());
             GenerationResult r = pipe.generate(GenerationRequest.builder().prompt("a red circle").seed(1L).build(), step -> true)) {
            assertTrue(r.isMeta());
            for (io.mmdit4j.runtime.Transfers.Counts c : io.mmdit4j.runtime.Transfers.lastLoop()) assertEquals(0, c.total(), c.toString());
        }
    }
}
