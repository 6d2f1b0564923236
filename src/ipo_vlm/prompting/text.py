"""The text of the Prompt Optimization Prompt, as named constants.

Change any of them only together with ``PROMPT_VERSION`` (it is recorded in every run, so
results stay attributable to the exact wording). ``{name}`` markers are filled by
``render.render_meta_prompt`` in a single pass of plain substitution.

The layout serves small local models: everything that stays the same between steps
(system line, task, descriptions) comes first so that llama.cpp can reuse the evaluated
prompt prefix; the memory and the closing instruction, which change every step, come last.
The memory is shown in the very line format the answer must take (minus the scores), with
the placeholder spelled as the LLM has to write it."""

PROMPT_VERSION = "pop-3"

SYSTEM_PROMPT = (
    "You write prompt templates for a CLIP image classifier. "
    "Never repeat a template that is already shown; every line you write is a new template."
)

TASK_INSTRUCTION = (
    "Task: find templates that help CLIP recognise images of {domain}. "
    "{placeholder} is where the class name goes; every template contains {placeholder} exactly once.\n"
    "Each template was scored on the few-shot training images: accuracy in % (0-100, higher is "
    "better) and loss, the mean cross-entropy (0 is perfect, lower is better)."
)

DESCRIPTIONS_HEADER = "What some training images show:"
DESCRIPTION_LINE = "- {description}"

MEMORY_HEADER = "Templates so far (worst first, best last), as `template | accuracy | loss`:"
MEMORY_LINE = "{template} | {accuracy} | {loss}"
MEMORY_EMPTY = "Templates so far: none yet."

WORST_HEADER = "Templates that scored worst so far (avoid what makes them fail):"

CLOSING_INSTRUCTION = (
    "Write {n} new templates, different from all above, that reach higher accuracy and lower "
    "loss. Vary the wording: photo style, viewpoint, background, material, setting. "
    "One template per line, each with {placeholder} once, without scores, nothing else."
)

#: the ``edit`` meta-prompt style: small changes to the best templates instead of free rewrites
CLOSING_INSTRUCTION_EDIT = (
    "Write {n} new templates, different from all above, that reach higher accuracy and lower "
    "loss. Make each one by editing one of the best templates: keep the words that work, and "
    "change, add or remove a few words, guided by what the images show. "
    "One template per line, each with {placeholder} once, without scores, nothing else."
)

#: appended to the closing instruction when templates have a word limit
LENGTH_LIMIT = " Each template has at most {max_words} words."

#: ``optimize.guidance``: what makes a template work, told to the LLM. Written for any dataset:
#: none of them names what particular images look like. ``looks`` is one sentence appended to
#: the closing instruction; ``mechanism`` a paragraph after the task (fixed between steps, so a
#: local model reuses its evaluated prefix); ``both`` is the two together.
GUIDANCE_LOOKS = (
    " A template works best when it describes how the training images really look, as the "
    "descriptions above say (their medium, quality and flaws included), not how an ideal photo "
    "would look."
)
#: ``looks`` when the meta-prompt has no image descriptions to point to
GUIDANCE_LOOKS_UNDESCRIBED = (
    " A template works best when it describes how the training images really look (their medium, "
    "quality and flaws included), not how an ideal photo would look."
)

GUIDANCE_MECHANISM = (
    "How a template works: CLIP puts each class name into the template and picks the class whose "
    "sentence is closest to the image. The words around {placeholder} decide how well the sentences "
    "fit the images, so the best templates describe these images as they really are: the medium "
    "(photo, drawing, render, scan, ...), the image quality and any flaws, the lighting, framing "
    "and background (where image descriptions are given, in their words). A template that describes a perfect "
    "picture when the images are not perfect fits them worse. Words that suit only some classes "
    "hurt: the template is also used for classes it has never seen, so it must describe the "
    "images, never any one class."
)

#: ``optimize.reflect``: the errors of the best template so far, in the images' descriptions
REFLECT_HEADER = (
    "Under the best template so far, {wrong} of {total} training images are classified wrongly. "
    "What some of the misclassified images show:"
)
REFLECT_NONE = "Under the best template so far, every training image is classified correctly."
REFLECT_PAIRS = "The most confused pairs of classes (images of the first taken for the second): {pairs}."
REFLECT_PAIRS_COUNTS = (
    "Misclassified images in the most confused pairs of classes (one class taken for another): "
    "{counts}, of {wrong}."
)
