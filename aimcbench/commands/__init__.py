"""aimcbench.commands"""
