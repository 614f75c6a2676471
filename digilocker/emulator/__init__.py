"""A DigiLocker emulator for development and tests: see app.create_emulator and the README's
"DigiLocker emulator" section."""

from digilocker.emulator.app import create_emulator
from digilocker.emulator.config import EmulatorConfig, Faults, Partner, TestUser

__all__ = ["EmulatorConfig", "Faults", "Partner", "TestUser", "create_emulator"]
