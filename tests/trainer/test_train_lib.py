"""The training loop's schedule of periodic work."""

from trainer.train_lib import Action, next_boundary


def test_the_evaluation_runs_every_eval_every_steps_but_leaves_the_last_to_the_evaluate_stage():
    # trainer/main.py evaluates the finished run; the loop evaluating at that step as well ran
    # the same evaluation twice whenever --eval_every divided --train_steps.
    evaluation = Action("evaluation", 500, None, at_end=False)
    assert [s for s in range(1, 1501) if evaluation.due(s, 1500)] == [500, 1000]
    assert [s for s in range(1, 1201) if evaluation.due(s, 1200)] == [500, 1000]


def test_other_work_runs_periodically_and_at_the_last_step():
    checkpoint = Action("checkpoint", 400, None)
    assert [s for s in range(1, 1001) if checkpoint.due(s, 1000)] == [400, 800, 1000]
    never = Action("samples", 0, None)
    assert [s for s in range(1, 11) if never.due(s, 10)] == [10]


def test_the_loop_stops_where_an_action_is_due():
    actions = [Action("checkpoint", 250, None), Action("evaluation", 400, None, at_end=False)]
    assert next_boundary(0, 1000, 100, actions) == 100
    assert next_boundary(200, 1000, 100, actions) == 250
    assert next_boundary(390, 1000, 100, actions) == 400
    assert next_boundary(980, 1000, 100, actions) == 1000
