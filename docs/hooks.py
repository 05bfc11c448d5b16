"""MkDocs hooks: the command-line reference is the parser's own help, so it cannot drift."""

import os

MARKER = "<!-- keras-lambda --help -->"


def on_page_markdown(markdown, page, **kwargs):
    if MARKER not in markdown:
        return markdown
    os.environ.setdefault("COLUMNS", "100")  # argparse wraps to the terminal's width
    from keras_lambda.cli import build_parser

    parser = build_parser()
    sections = [f"```text\n{parser.format_help()}```"]
    commands = next(action for action in parser._actions if action.dest == "command")
    for name, command in commands.choices.items():
        sections.append(f"## `keras-lambda {name}`\n\n```text\n{command.format_help()}```")
    return markdown.replace(MARKER, "\n\n".join(sections))
